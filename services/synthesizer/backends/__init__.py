"""TTS backends: engines that turn phonemes and a style into 24 kHz audio."""
