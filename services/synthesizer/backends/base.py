"""The one interface every TTS backend implements.

Backends see numpy arrays and plain options, never protobuf. A request is cut
into segments (sentences, already phonemised where the backend needs that) up
front, so bad text fails before any model time is spent, and each segment is
synthesised on its own: that is what streaming sends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

#: How a backend asks the Embedder for conditioning: (wav bytes, encoder) -> tensors.
EmbedAudio = Callable[[bytes, str], Awaitable[Mapping[str, np.ndarray]]]


@dataclass(frozen=True)
class Segment:
    #: The sentence as the caller wrote it (sent back with streamed chunks).
    text: str
    #: What the backend will actually speak (e.g. phonemes for Kokoro).
    payload: Any


@dataclass(frozen=True)
class VoicePlan:
    """The voice a backend will speak in, decided once per request."""

    backend_voice: str
    similarity: float
    payload: Any


class Backend(Protocol):
    name: str
    #: The Embedder encoder whose conditioning this backend consumes.
    encoder: str
    sample_rate: int
    languages: frozenset[str]
    #: Whether `synthesize` honours a speed other than 1.0 (else such requests are refused).
    variable_speed: bool
    #: Tensor name -> shape (None = any length) that conditioning must have.
    required_tensors: Mapping[str, tuple[int | None, ...]]

    async def warm_up(self, embed: EmbedAudio) -> None:
        """One-time set-up that needs the Embedder (e.g. embedding bundled voices). Idempotent."""
        ...

    def segments(self, text: str, language: str) -> list[Segment]:
        """Split and pre-process text; raise InvalidInput when nothing speakable remains."""
        ...

    def plan(self, conditioning: Mapping[str, np.ndarray], options: Mapping[str, str]) -> VoicePlan:
        """Choose or build the voice for this request from the conditioning."""
        ...

    def synthesize(self, segment: Segment, plan: VoicePlan, *, language: str, speed: float) -> np.ndarray:
        """Blocking: float32 mono samples at sample_rate. Called from the model thread pool."""
        ...
