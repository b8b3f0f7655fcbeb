"""The offline default backend: Kokoro-82M picks the bundled voice nearest to the reference.

Kokoro cannot clone a voice: it speaks one of its bundled voice packs. What this
backend does honestly is choose among them: each bundled voice speaks a fixed
sample once, the Embedder turns that sample into an ECAPA vector (cached and
pinned there like any voice), and a request uses the voice whose vector is
closest (cosine) to the reference's. The response reports the voice and the
cosine; with five Japanese packs and English references the cosines are low,
which is the truth about how close the match is.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from services.common.errors import InvalidInput
from services.synthesizer import text as text_mod
from services.synthesizer.backends.base import EmbedAudio, Segment, VoicePlan
from services.synthesizer.backends.kokoro_engine import KokoroEngine
from services.synthesizer.settings import SynthesizerSettings
from voxcache.tensors import SPEAKER

log = logging.getLogger(__name__)

#: backend_options kokoro understands; any other key is refused, never ignored.
KNOWN_OPTIONS = ("voice",)

#: Spoken by every bundled voice to characterise it (phonetically varied, ~5 s).
VOICE_SAMPLE_TEXT = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
    "It is easy to tell the depth of a well."
)


class KokoroBackend:
    variable_speed = True
    name = "kokoro"
    encoder = "ecapa"
    required_tensors: Mapping[str, tuple[int | None, ...]] = {SPEAKER: (192,)}

    def __init__(self, engine: KokoroEngine, samples_dir: Path) -> None:
        self.engine = engine
        self.samples_dir = samples_dir
        self.sample_rate = engine.sample_rate
        self.languages = engine.languages
        self._voice_vectors: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, model_dir: Path, *, threads: int = 0) -> KokoroBackend:
        return cls(KokoroEngine(model_dir, threads=threads), model_dir / "voice_samples")

    def voice_sample(self, voice: str) -> bytes:
        """The WAV a bundled voice is characterised by, kept next to the weights after the first time.

        Deterministic for given weights, so its Embedder cache key is stable across restarts.
        """
        cached = self.samples_dir / f"{voice}.{self.engine.weights_digest[:12]}.wav"
        if cached.is_file():
            return cached.read_bytes()
        data = self._render_sample(voice)
        try:
            cached.parent.mkdir(exist_ok=True)
            partial = cached.with_suffix(".partial")
            partial.write_bytes(data)
            partial.replace(cached)
        except OSError as exc:  # a read-only model directory only costs a re-render next start
            log.info("kokoro: voice sample not kept (%s)", exc)
        return data

    def _render_sample(self, voice: str) -> bytes:
        phonemes = self.engine.phonemize(VOICE_SAMPLE_TEXT, "en")
        samples = np.concatenate(
            [self.engine.synthesize(p, self.engine.voice_pack(voice)) for p in self.engine.split_phonemes(phonemes)]
        )
        buffer = io.BytesIO()
        sf.write(buffer, samples, self.sample_rate, format="WAV", subtype="PCM_16")
        return buffer.getvalue()

    async def warm_up(self, embed: EmbedAudio) -> None:
        if self._voice_vectors:
            return
        vectors = {}
        for voice in self.engine.voice_names:
            sample = await asyncio.to_thread(self.voice_sample, voice)
            vector = np.asarray((await embed(sample, self.encoder))[SPEAKER], dtype=np.float32)
            vectors[voice] = vector / np.linalg.norm(vector)
        self._voice_vectors = vectors
        log.info("kokoro: %d bundled voices characterised through the Embedder", len(vectors))

    def segments(self, text: str, language: str) -> list[Segment]:
        segments = []
        for sentence in text_mod.sentences(text):
            phonemes = self.engine.phonemize(sentence, language)
            segments.extend(Segment(sentence, piece) for piece in self.engine.split_phonemes(phonemes) if piece)
        if not segments:
            raise InvalidInput("text yields no phonemes: nothing in it can be spoken", field="text")
        return segments

    def plan(self, conditioning: Mapping[str, np.ndarray], options: Mapping[str, str]) -> VoicePlan:
        for key in options:
            if key not in KNOWN_OPTIONS:
                raise InvalidInput(
                    f"kokoro has no option {key!r}; it takes: {', '.join(KNOWN_OPTIONS)}",
                    field=f"backend_options[{key}]",
                )
        speaker = np.asarray(conditioning[SPEAKER], dtype=np.float32)
        norm = float(np.linalg.norm(speaker))
        if norm == 0.0:
            raise InvalidInput("speaker vector is all zeros", field="conditioning.tensors[speaker]")
        cosines = {voice: float(vector @ speaker) / norm for voice, vector in self._voice_vectors.items()}
        requested = options.get("voice")
        if requested is not None:
            if requested not in self.engine.voice_names:
                raise InvalidInput(
                    f"kokoro has no voice {requested!r}; choose from {', '.join(self.engine.voice_names)}",
                    field="backend_options[voice]",
                )
            voice = requested
        else:
            voice = max(cosines, key=cosines.__getitem__)
        return VoicePlan(voice, round(cosines[voice], 4), self.engine.voice_pack(voice))

    def synthesize(self, segment: Segment, plan: VoicePlan, *, language: str, speed: float) -> np.ndarray:
        return self.engine.synthesize(segment.payload, plan.payload, speed)


def from_settings(settings: SynthesizerSettings) -> KokoroBackend:
    return KokoroBackend.load(settings.model_dir / "kokoro", threads=settings.threads)
