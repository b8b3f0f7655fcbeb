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

import numpy as np

from services.embedder.encoders.base import Encoder


class Float16Storage:
    """The same encoder, its tensors stored and served as float16 (and keyed accordingly)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.tensors = tuple(spec.as_float16() for spec in inner.tensors)
        self.weights_digest = hashlib.sha256(f"{inner.weights_digest}\nstorage=float16".encode()).hexdigest()

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for name, array in self.inner.encode(samples).items():
            half = array.astype(np.float16)
            if not np.isfinite(half).all():  # float16 tops out at 65504
                raise RuntimeError(f"{self.name}: tensor {name!r} overflows float16; store it as float32")
            out[name] = half
        return out


class Float16Rounded:
    """The same encoder, its float32 outputs rounded to the nearest float16 (and keyed accordingly)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.tensors = inner.tensors
        self.weights_digest = hashlib.sha256(f"{inner.weights_digest}\nvalues=float16".encode()).hexdigest()

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for name, array in self.inner.encode(samples).items():
            half = array.astype(np.float16)
            if not np.isfinite(half).all():
                raise RuntimeError(f"{self.name}: tensor {name!r} overflows float16; store it as float32")
            out[name] = half.astype(array.dtype)
        return out
