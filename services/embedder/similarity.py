"""Clone quality: how much generated speech sounds like its reference voice (ScoreSpeaker).

The figure is the cosine between two ECAPA speaker embeddings, the "SIM" column TTS papers
report for zero-shot cloning. This module holds the pure parts: the cosine, the checks an
inline reference vector needs, the caller's backend label, and the per-backend figures
(a recent window for the p50 GetStats reports, a histogram and counters for /metrics).
No gRPC, no model: `Embedder.score_speaker` does the embedding.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field

import numpy as np

from services.common.errors import InvalidInput
from services.embedder.metrics import Histogram
from voxcache.tensors import SPEAKER

#: Cosine buckets: cloning models score ~0.6-0.9 (with their own verifiers), a bundled voice far lower.
SIMILARITY_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
#: Label of scores whose caller named no backend.
UNLABELLED = "unlabelled"
#: Distinct labels kept; more would let callers grow /metrics without bound. Later ones count as "other".
MAX_LABELS = 16
OTHER = "other"
_LABEL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
#: The ECAPA vector's length: what a reference given inline must have.
SPEAKER_DIM = 192


def label_of(backend: str) -> str:
    """The caller's backend label, checked: it becomes a Prometheus label value."""
    if not backend:
        return UNLABELLED
    if not _LABEL.fullmatch(backend):
        raise InvalidInput(
            f"backend label {backend!r} must be 1-32 characters of a-z, 0-9, '_', '.', '-'", field="backend"
        )
    return backend


def reference_vector(tensors: Mapping[str, np.ndarray], field_prefix: str = "reference_conditioning") -> np.ndarray:
    """The speaker vector of inline ECAPA conditioning, refused precisely when it cannot be one."""
    vector = tensors.get(SPEAKER)
    if vector is None:
        raise InvalidInput(f"reference conditioning lacks tensor {SPEAKER!r}", field=f"{field_prefix}.tensors")
    where = f"{field_prefix}.tensors[{SPEAKER}]"
    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    if flat.shape != (SPEAKER_DIM,):
        raise InvalidInput(
            f"tensor {SPEAKER!r} has shape {tuple(np.shape(vector))}, expected ({SPEAKER_DIM},)", field=where
        )
    if not np.isfinite(flat).all():
        raise InvalidInput(f"tensor {SPEAKER!r} contains NaN or infinity", field=where)
    if not flat.any():
        raise InvalidInput(f"tensor {SPEAKER!r} is all zeros", field=where)
    return flat


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two vectors (neither zero: both come from checks above or from the model)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    return float(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))


@dataclass
class BackendSimilarity:
    """One label's scores: recent values for the median, a histogram, and counts."""

    recent: deque[float] = field(default_factory=lambda: deque(maxlen=1024))
    histogram: Histogram = field(default_factory=lambda: Histogram(bounds=SIMILARITY_BUCKETS))
    scored: int = 0
    failed: int = 0


@dataclass(frozen=True)
class SimilarityFigures:
    """One label's figures at one instant, for GetStats and /metrics."""

    p50: float
    samples: int
    scored: int
    failed: int
    histogram: Histogram


@dataclass
class SimilarityStats:
    by_label: dict[str, BackendSimilarity] = field(default_factory=dict)

    def _of(self, label: str) -> BackendSimilarity:
        entry = self.by_label.get(label)
        if entry is None:
            if len(self.by_label) >= MAX_LABELS:
                label = OTHER
            entry = self.by_label.setdefault(label, BackendSimilarity())
        return entry

    def record(self, label: str, value: float) -> None:
        entry = self._of(label)
        entry.recent.append(value)
        entry.histogram.observe(value)
        entry.scored += 1

    def record_failure(self, label: str) -> None:
        self._of(label).failed += 1

    def figures(self) -> dict[str, SimilarityFigures]:
        out = {}
        for label, entry in self.by_label.items():
            ordered = sorted(entry.recent)
            p50 = ordered[len(ordered) // 2] if ordered else 0.0
            out[label] = SimilarityFigures(p50, len(ordered), entry.scored, entry.failed, deepcopy(entry.histogram))
        return out
