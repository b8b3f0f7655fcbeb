"""Clone quality in the answer: which answers are scored, and the score that never fails one.

The Synthesizer cannot judge its own output: it sends the first `SCORE_WINDOW_S` seconds of
the audio it just made to the Embedder's ScoreSpeaker (which owns ECAPA and keeps the
per-backend figures), with the reference it was asked to speak in. A request may force a
score; otherwise 1 in `--score-sample-rate` answers is scored, so production gets a steady
signal for one extra ECAPA pass per N answers. Any failure (Embedder down, audio too short
to embed, no ECAPA vector to compare with) leaves the answer unscored with the reason, and
is counted here and logged: synthesis never fails because scoring did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from services.common.errors import ServiceError
from services.synthesizer.embedder_client import EmbedderGateway
from services.synthesizer.wav import wav_header
from voxcache.tensors import SPEAKER

log = logging.getLogger(__name__)

#: Seconds of generated audio scored: within the Embedder's default 30 s clip limit, and plenty for ECAPA.
SCORE_WINDOW_S = 20.0
#: The encoder whose vectors ScoreSpeaker compares: inline conditioning from it is used as the reference.
SCORING_ENCODER = "ecapa"


class ScoringSettingsError(ValueError):
    """A --score-sample-rate the Synthesizer cannot use: it refuses to start."""


@dataclass(frozen=True)
class ScoreReference:
    """What the generated audio is compared with: exactly one field set, or none (cannot be scored)."""

    reference_audio: bytes | None = None
    voice_id: str | None = None
    #: The reference's ECAPA vector, when the request's conditioning already is one (kokoro).
    speaker: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        *,
        encoder: str,
        conditioning: Mapping[str, np.ndarray],
        reference_audio: bytes | None,
        voice_id: str | None,
    ) -> ScoreReference:
        """The cheapest reference: the ECAPA vector in hand, else the clip or voice the request named."""
        if encoder == SCORING_ENCODER and SPEAKER in conditioning:
            return cls(speaker=np.asarray(conditioning[SPEAKER], dtype=np.float32))
        return cls(reference_audio=reference_audio, voice_id=voice_id)

    @property
    def empty(self) -> bool:
        return self.reference_audio is None and self.voice_id is None and self.speaker is None


@dataclass(frozen=True)
class CloneScore:
    """`similarity` when scored; else None and `error` says why."""

    similarity: float | None
    error: str = ""


class CloneScorer:
    def __init__(self, embedder: EmbedderGateway, sample_every: int) -> None:
        if sample_every < 0:
            raise ScoringSettingsError(f"--score-sample-rate must be 0 (off) or N >= 1 (1 in N), not {sample_every}")
        self.embedder = embedder
        self.sample_every = sample_every
        self._unforced = 0
        self.scored = 0
        self.failed = 0

    def wanted(self, forced: bool) -> bool:
        """Forced requests always; otherwise every `sample_every`-th request (none when 0)."""
        if forced:
            return True
        if self.sample_every == 0:
            return False
        self._unforced += 1
        return self._unforced % self.sample_every == 0

    async def score(
        self, pcm16: bytes, sample_rate: int, reference: ScoreReference, backend: str, deadline: float | None
    ) -> CloneScore:
        """Never raises a ServiceError: a failed score is an unscored answer, counted and logged."""
        if reference.empty:
            return self._failed(
                backend, f"the {backend} backend's inline conditioning has no {SCORING_ENCODER} vector to compare with"
            )
        clip = pcm16[: int(SCORE_WINDOW_S * sample_rate) * 2]
        try:
            value = await self.embedder.score(
                audio=wav_header(len(clip), sample_rate) + clip,
                reference_audio=reference.reference_audio,
                voice_id=reference.voice_id,
                speaker=reference.speaker,
                backend=backend,
                deadline=deadline,
            )
        except ServiceError as exc:
            return self._failed(backend, exc.message)
        self.scored += 1
        return CloneScore(value)

    def _failed(self, backend: str, reason: str) -> CloneScore:
        self.failed += 1
        log.warning("clone quality not scored (%s backend): %s", backend, reason)
        return CloneScore(None, f"not scored: {reason}")
