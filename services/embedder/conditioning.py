"""The domain value the Embedder produces and caches."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Conditioning:
    """One cache entry's value. Compared and hashed by identity: an entry is one object,
    shared by L1 and every request it answers, so per-object memos (the wire message) live
    exactly as long as the entry does."""

    encoder: str
    weights_digest: str
    cache_key: str
    #: Read-only arrays; shared between requests, never mutated.
    tensors: dict[str, np.ndarray] = field(repr=False)

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.tensors.values())
