"""voxcache Python SDK: typed clients for the Embedder and the Synthesizer (no torch)."""

from voxcache.client import AsyncEmbedderClient, EmbedderClient, Embedding, PreloadSummary, Voice
from voxcache.errors import VoxcacheError
from voxcache.synthesis import AsyncSynthesizerClient, Speech, SpeechChunk, SynthesizerClient

__all__ = [
    "AsyncEmbedderClient",
    "AsyncSynthesizerClient",
    "EmbedderClient",
    "Embedding",
    "PreloadSummary",
    "Speech",
    "SpeechChunk",
    "SynthesizerClient",
    "Voice",
    "VoxcacheError",
]
