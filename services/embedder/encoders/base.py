"""The encoder interface: what the Embedder needs from a speaker model, and nothing more."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from services.embedder.conditioning import TensorSpec


class Encoder(Protocol):
    name: str
    #: Identifies weights + preprocessing; changes every cache key when it changes.
    weights_digest: str
    #: Rate of the mono float32 samples `encode` expects.
    sample_rate: int
    #: Every tensor `encode` returns, exactly: a cache hit that does not match is recomputed.
    tensors: tuple[TensorSpec, ...]

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on one clip. Blocking; called from a worker thread, one at a time."""
        ...
