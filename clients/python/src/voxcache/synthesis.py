"""Deprecated old home of the Synthesizer client: import from voxcache.synthesizer instead.

Modules are now named for their service. This shim keeps `from voxcache.synthesis
import ...` working for one release; importing it warns once per process. Its names
are the very objects of voxcache.synthesizer (and of voxcache.embedder and
voxcache.channel for the names the old module imported from voxcache.client), not
copies. `from voxcache import SynthesizerClient` never warns.
"""

from __future__ import annotations

import warnings

from voxcache.channel import CHANNEL_OPTIONS
from voxcache.embedder import AudioInput, Embedding, read_audio
from voxcache.errors import VoxcacheError
from voxcache.synthesizer import (
    DEFAULT_SYNTH_TARGET,
    DEFAULT_SYNTH_TIMEOUT_S,
    AsyncSynthesizerClient,
    Speech,
    SpeechChunk,
    SynthesizerClient,
)

__all__ = [
    "CHANNEL_OPTIONS",
    "DEFAULT_SYNTH_TARGET",
    "DEFAULT_SYNTH_TIMEOUT_S",
    "AsyncSynthesizerClient",
    "AudioInput",
    "Embedding",
    "Speech",
    "SpeechChunk",
    "SynthesizerClient",
    "VoxcacheError",
    "read_audio",
]

# stacklevel=2 names the importing module: warnings skips the import machinery's own frames.
warnings.warn(
    "voxcache.synthesis is deprecated and will be removed in the next release; import from voxcache.synthesizer",
    DeprecationWarning,
    stacklevel=2,
)
