"""The domain value the Embedder produces and caches, and what an encoder declares it holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

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


class TensorMismatch(ValueError):
    """Tensors that are not what their encoder declares: wrong names, dtypes, shapes or values."""


@dataclass(frozen=True)
class TensorSpec:
    """One tensor an encoder produces: its name, numpy dtype name and shape (None: any length)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    @cached_property
    def numpy_dtype(self) -> np.dtype:
        """`dtype` as numpy's object, made once: comparing objects is ~15x cheaper than `array.dtype.name`
        (a new string per call), and every cache hit is checked."""
        return np.dtype(self.dtype)

    def problem(self, array: np.ndarray, *, finite: bool = True) -> str | None:
        """Why `array` does not fit this spec, or None when it does (`finite`: its values too)."""
        if array.dtype != self.numpy_dtype and array.dtype.name != self.dtype:
            return f"{self.name}: dtype {array.dtype.name}, expected {self.dtype}"
        if array.shape != self.shape and (
            len(array.shape) != len(self.shape)
            or any(want is not None and got != want for got, want in zip(array.shape, self.shape, strict=True))
        ):
            expected = ", ".join("*" if d is None else str(d) for d in self.shape)
            return f"{self.name}: shape {array.shape}, expected ({expected})"
        if finite and not np.isfinite(array).all():
            return f"{self.name}: non-finite values"
        return None

    def as_float16(self) -> TensorSpec:
        return TensorSpec(self.name, "float16", self.shape)


def check_tensors(specs: Sequence[TensorSpec], tensors: Mapping[str, np.ndarray], *, finite: bool = True) -> None:
    """Exactly the declared tensors, each of its dtype and shape and finite; else TensorMismatch.

    A cache hit is checked with this before it is used: a value that decodes can still be
    the wrong thing (another build's layout, a hand-written key, a NaN the model never made),
    and the Synthesizer would otherwise fail on it, or worse, speak with it. `finite=False`
    leaves the values to a caller that has already checked them (and reports them otherwise).
    """
    if len(tensors) != len(specs) or any(spec.name not in tensors for spec in specs):
        raise TensorMismatch(f"tensors {sorted(tensors)}, expected {sorted(spec.name for spec in specs)}")
    problems = [p for spec in specs if (p := spec.problem(tensors[spec.name], finite=finite)) is not None]
    if problems:
        raise TensorMismatch("; ".join(problems))
