"""voxcache Python SDK: clients for the Embedder (and, later, the Synthesizer)."""

from voxcache.client import AsyncEmbedderClient, EmbedderClient, Embedding, PreloadSummary, Voice
from voxcache.errors import VoxcacheError

__all__ = ["AsyncEmbedderClient", "EmbedderClient", "Embedding", "PreloadSummary", "Voice", "VoxcacheError"]
