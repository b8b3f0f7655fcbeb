"""Registered voices: the model (`Voice`) and where voices are kept (`VoiceRegistry`, one per tenant)."""

from services.embedder.voices.model import Voice, validate_voice_id
from services.embedder.voices.registry import (
    MemoryVoiceRegistry,
    RedisVoiceRegistry,
    VoiceRegistries,
    VoiceRegistry,
)

__all__ = [
    "MemoryVoiceRegistry",
    "RedisVoiceRegistry",
    "Voice",
    "VoiceRegistries",
    "VoiceRegistry",
    "validate_voice_id",
]
