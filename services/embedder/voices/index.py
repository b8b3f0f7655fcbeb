"""VectorIndex: one tenant's voice vectors of one encoder, searched by brute force.

Rows of an L2-normalised float32 matrix, so a cosine is one dot product and a search is
one matrix-vector product plus `argpartition` for the top k: exact, and at 100 k voices
of 192 values still a few milliseconds (bench/search_bench.py). Adding appends (the
matrix doubles when full); removing moves the last row into the hole (swap-remove), so
both are O(1) amortised and the live rows are always the first `len(self)`.
"""

from __future__ import annotations

import numpy as np

#: Rows allocated for an empty index; the matrix doubles from there.
_INITIAL_ROWS = 64


class VectorIndex:
    """Voice ids and their unit vectors; plain data, no I/O, not thread-safe (one event loop)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._matrix = np.zeros((_INITIAL_ROWS, dim), dtype=np.float32)
        self._ids: list[str] = []
        self._row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, voice_id: object) -> bool:
        return voice_id in self._row

    @property
    def nbytes(self) -> int:
        """Bytes of the allocated matrix (the ids are Python strings on top of it)."""
        return self._matrix.nbytes

    def unit(self, vector: np.ndarray) -> np.ndarray:
        """`vector` as a float32 row of length `dim` and norm 1; ValueError if it cannot be one."""
        row = np.asarray(vector, dtype=np.float32).reshape(-1)
        if row.shape[0] != self.dim:
            raise ValueError(f"{row.shape[0]} values, expected {self.dim}")
        if not np.isfinite(row).all():
            raise ValueError("non-finite values")
        norm = float(np.linalg.norm(row))
        if norm == 0.0:
            raise ValueError("a zero vector has no direction to compare")
        return row / norm

    def add(self, voice_id: str, vector: np.ndarray) -> None:
        """Insert or replace `voice_id`'s vector."""
        row = self.unit(vector)
        at = self._row.get(voice_id)
        if at is None:
            at = len(self._ids)
            if at == self._matrix.shape[0]:
                grown = np.zeros((2 * at, self.dim), dtype=np.float32)
                grown[:at] = self._matrix
                self._matrix = grown
            self._ids.append(voice_id)
            self._row[voice_id] = at
        self._matrix[at] = row

    def remove(self, voice_id: str) -> bool:
        """Drop `voice_id` (False if absent): the last row moves into its place."""
        at = self._row.pop(voice_id, None)
        if at is None:
            return False
        last = len(self._ids) - 1
        if at != last:
            moved = self._ids[last]
            self._matrix[at] = self._matrix[last]
            self._ids[at] = moved
            self._row[moved] = at
        self._ids.pop()
        return True

    def ids(self) -> list[str]:
        """A copy of the indexed ids, in row order."""
        return list(self._ids)

    def vector(self, voice_id: str) -> np.ndarray | None:
        """A copy of `voice_id`'s unit vector, or None."""
        at = self._row.get(voice_id)
        return None if at is None else self._matrix[at].copy()

    def search(self, query: np.ndarray, k: int, *, exclude: str | None = None) -> list[tuple[str, float]]:
        """The k nearest voices by cosine, nearest first (ties in row order). `query` need not be
        normalised; `exclude` leaves one voice out (a voice is not its own neighbour)."""
        count = len(self._ids)
        if count == 0 or k <= 0:
            return []
        # einsum, not `@`: OpenBLAS's threaded matrix-vector product collapses when its threads
        # share cores with other work (0.18 -> 4.5 ms at 10 k voices on the loaded 2-core bench
        # box); einsum's loop is single-threaded SIMD, as fast at 100 k and predictable.
        scores = np.einsum("ij,j->i", self._matrix[:count], self.unit(query))
        skip = self._row.get(exclude) if exclude is not None else None
        if skip is not None:
            scores[skip] = -np.inf
        available = count - (skip is not None)
        k = min(k, available)
        if k <= 0:
            return []
        top = np.argpartition(scores, count - k)[count - k :] if k < count else np.arange(count)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._ids[i], float(scores[i])) for i in top]
