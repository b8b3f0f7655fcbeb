"""voxcache Python SDK: typed clients for the Embedder and the Synthesizer (no torch).

Modules are named for their service: voxcache.embedder, voxcache.synthesizer, and
voxcache.channel for what both share, voxcache.tls for TLS material. Import the clients from here or from those.
"""

from voxcache.embedder import (
    AsyncEmbedderClient,
    EmbedderClient,
    Embedding,
    PreloadSummary,
    Voice,
    VoiceMatch,
    VoiceSearch,
)
from voxcache.errors import VoxcacheError
from voxcache.synthesizer import AsyncSynthesizerClient, Speech, SpeechChunk, SynthesizerClient
from voxcache.tls import TLS, TLSError

__all__ = [
    "TLS",
    "AsyncEmbedderClient",
    "AsyncSynthesizerClient",
    "EmbedderClient",
    "Embedding",
    "PreloadSummary",
    "Speech",
    "SpeechChunk",
    "SynthesizerClient",
    "TLSError",
    "Voice",
    "VoiceMatch",
    "VoiceSearch",
    "VoxcacheError",
]
