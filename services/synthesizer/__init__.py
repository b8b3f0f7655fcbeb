"""Synthesizer service: voice-cloning TTS from cached speaker conditioning."""
