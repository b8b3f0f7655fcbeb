"""The encoder interface: what the Embedder needs from a speaker model, and nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class BatchEncoder(Encoder, Protocol):
    """Optional: an encoder that can run several clips in one forward pass.

    Only such encoders are micro-batched (services/embedder/batching.py); the others keep
    one forward pass per clip whatever --batch-window-ms says.
    """

    def encode_batch(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """`encode` of each clip, in order, in one pass. Clips in one call have similar lengths.

        Raising fails the batch; the caller then retries its clips one by one with `encode`.
        """
        ...
