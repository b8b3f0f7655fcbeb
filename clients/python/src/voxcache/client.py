"""Deprecated old home of the Embedder client: import from voxcache.embedder instead.

Modules are now named for their service. This shim keeps `from voxcache.client import
...` working for one release; importing it warns once per process. Its names are the
very objects of voxcache.embedder and voxcache.channel (not copies), so isinstance
checks and monkeypatches still agree. `from voxcache import EmbedderClient` never warns.
"""

from __future__ import annotations

import warnings

from voxcache.channel import CHANNEL_OPTIONS
from voxcache.embedder import (
    DEFAULT_TARGET,
    DEFAULT_TIMEOUT_S,
    AsyncEmbedderClient,
    AudioInput,
    EmbedderClient,
    Embedding,
    PreloadSummary,
    Voice,
    read_audio,
)
from voxcache.errors import VoxcacheError

__all__ = [
    "CHANNEL_OPTIONS",
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT_S",
    "AsyncEmbedderClient",
    "AudioInput",
    "EmbedderClient",
    "Embedding",
    "PreloadSummary",
    "Voice",
    "VoxcacheError",
    "read_audio",
]

# stacklevel=2 names the importing module: warnings skips the import machinery's own frames.
warnings.warn(
    "voxcache.client is deprecated and will be removed in the next release; "
    "import from voxcache.embedder (CHANNEL_OPTIONS: voxcache.channel)",
    DeprecationWarning,
    stacklevel=2,
)
