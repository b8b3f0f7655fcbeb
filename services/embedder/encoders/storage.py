"""Storage precision as part of an encoder's identity.

IndexTTS2's bundle is ~2 MB per 5 s clip in float32 (~6 MB at 15 s), above
gRPC's 4 MiB default and heavy for Redis; float16 halves it. Wrapping the
encoder, rather than casting in the cache, keeps one rule intact: the cache key
names exactly what is stored, so float16 and float32 entries never mix.

Two ways: `Float16Storage` stores and serves float16 (the wire dtype changes; for bundles
whose size matters on the wire too), `Float16Rounded` rounds the values to float16 but
serves float32 (the wire contract is unchanged; the record stores them in half the bytes,
losslessly, because each value is exactly a float16). Hits and misses return the same values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from services.embedder.encoders.base import BatchEncoder, Encoder


class _Precision:
    """An encoder whose outputs are converted by `_convert`; keyed by `tag`, batched if the inner is."""

    tag = ""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.tensors = inner.tensors
        self.weights_digest = hashlib.sha256(f"{inner.weights_digest}\n{self.tag}".encode()).hexdigest()
        if isinstance(inner, BatchEncoder):  # stays micro-batchable exactly when the inner encoder is
            self.encode_batch = self._encode_batch

    @property
    def runtime(self) -> Any:
        """What runs the inner model (GetStats and /metrics report it), if it has a choice."""
        return getattr(self.inner, "runtime", None)

    def _convert(self, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _outputs(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name, array in tensors.items():
            half = array.astype(np.float16)
            if not np.isfinite(half).all():  # float16 tops out at 65504
                raise RuntimeError(f"{self.name}: tensor {name!r} overflows float16; store it as float32")
            out[name] = self._convert(half)
        return out

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        return self._outputs(self.inner.encode(samples))

    def _encode_batch(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        assert isinstance(self.inner, BatchEncoder)
        return [self._outputs(tensors) for tensors in self.inner.encode_batch(batch)]


class Float16Storage(_Precision):
    """The same encoder, its tensors stored and served as float16 (and keyed accordingly)."""

    tag = "storage=float16"

    def __init__(self, inner: Encoder) -> None:
        super().__init__(inner)
        self.tensors = tuple(spec.as_float16() for spec in inner.tensors)

    def _convert(self, array: np.ndarray) -> np.ndarray:
        return array


class Float16Rounded(_Precision):
    """The same encoder, its float32 outputs rounded to the nearest float16 (and keyed accordingly)."""

    tag = "values=float16"

    def _convert(self, array: np.ndarray) -> np.ndarray:
        return array.astype(np.float32)
