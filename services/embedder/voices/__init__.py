"""Registered voices: the model (`Voice`) and where voices are kept (`VoiceRegistry`)."""

from services.embedder.voices.model import Voice, validate_voice_id
from services.embedder.voices.registry import MemoryVoiceRegistry, RedisVoiceRegistry, VoiceRegistry

__all__ = ["MemoryVoiceRegistry", "RedisVoiceRegistry", "Voice", "VoiceRegistry", "validate_voice_id"]
