"""The Synthesizer: text + a voice in, sentences of audio out.

Plain asyncio, no gRPC. Everything that can be wrong with a request is checked
before the Embedder is asked or a model runs; the conditioning always comes
from the Embedder (or from the caller, inline), never from a local computation.
Unary and streaming calls share `_render`, so their audio is byte-identical, and both
are framed (WAV or raw PCM) and timed here, not in the transport.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from services.common import tracing
from services.common.errors import DeadlineExceeded, InvalidInput
from services.synthesizer import text as text_mod
from services.synthesizer.backends.base import Backend, Segment, VoicePlan
from services.synthesizer.embedder_client import EmbedderGateway
from services.synthesizer.scoring import CloneScore, CloneScorer, ScoreReference
from services.synthesizer.settings import SynthesizerSettings
from services.synthesizer.wav import to_pcm16, wav_header

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthesisRequest:
    text: str
    reference_audio: bytes | None = None
    voice_id: str | None = None
    conditioning: Mapping[str, np.ndarray] | None = None
    #: Encoder that produced inline conditioning ("" = trust the caller).
    conditioning_encoder: str = ""
    language: str = ""
    speed: float = 0.0
    backend: str = ""
    options: Mapping[str, str] = field(default_factory=dict)
    #: Score this answer's clone quality whatever the sample rate.
    score: bool = False


#: Speaking rates every backend can honour (0 in a request means 1.0).
MIN_SPEED, MAX_SPEED = 0.5, 2.0


class AudioFormat(enum.Enum):
    WAV = "wav"
    PCM16 = "pcm16"


@dataclass(frozen=True)
class VoiceSelection:
    """Which voice a request is spoken in, and where its conditioning came from."""

    backend: str
    backend_voice: str
    similarity: float
    conditioning_cache_hit: bool
    cache_key: str


@dataclass(frozen=True)
class SynthesisTimings:
    embed_ms: float
    synthesis_ms: float
    total_ms: float


@dataclass
class RequestPlan:
    """A checked request, its voice decided: all that is left is to speak it."""

    backend: Backend
    segments: list[Segment]
    voice: VoicePlan
    language: str
    speed: float
    selection: VoiceSelection
    embed_ms: float
    started: float
    #: What the audio is scored against, when this answer is scored (forced or sampled); else None.
    score_reference: ScoreReference | None = None

    def timings(self) -> SynthesisTimings:
        total_ms = (time.perf_counter() - self.started) * 1000
        return SynthesisTimings(self.embed_ms, max(0.0, total_ms - self.embed_ms), total_ms)


@dataclass(frozen=True)
class Synthesis:
    """A whole answer: the audio framed as asked."""

    audio: bytes
    sample_rate: int
    format: AudioFormat
    selection: VoiceSelection
    timings: SynthesisTimings
    duration_s: float
    score: CloneScore | None = None


@dataclass(frozen=True)
class Chunk:
    """One sentence of a streamed answer; the first carries the voice selection."""

    index: int
    sentence: str
    pcm16: bytes
    sample_rate: int
    selection: VoiceSelection | None = None


@dataclass(frozen=True)
class StreamEnd:
    """The end of a stream: how many sentences, timings, and the WAV header for the whole PCM."""

    sentences: int
    sample_rate: int
    timings: SynthesisTimings
    #: Empty for raw PCM; else the header a client prepends to the concatenated chunks.
    wav_header: bytes
    score: CloneScore | None = None


class Synthesizer:
    def __init__(
        self,
        backends: Mapping[str, Backend],
        *,
        default_backend: str,
        embedder: EmbedderGateway,
        model_pool: ThreadPoolExecutor,
        settings: SynthesizerSettings,
    ) -> None:
        if default_backend not in backends:
            raise ValueError(f"default backend {default_backend!r} is not among {sorted(backends)}")
        self.backends = dict(backends)
        self.default_backend = default_backend
        self.embedder = embedder
        self.settings = settings
        self._pool = model_pool
        self._warm: dict[str, asyncio.Task[None]] = {}
        self.scorer = CloneScorer(embedder, settings.score_sample_rate)

    # -- public API -------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Warm every backend now (tolerating an Embedder that is not up yet)."""
        for name in self.backends:
            try:
                await self._ensure_warm(self.backends[name])
            except Exception as exc:  # retried on the first request that needs it
                log.warning("backend %s not warmed up yet (%s); will retry on first use", name, exc)

    async def synthesize(
        self, request: SynthesisRequest, audio_format: AudioFormat, deadline: float | None = None
    ) -> Synthesis:
        plan = await self.plan(request, deadline)
        pcm = b"".join([chunk.pcm16 async for chunk in self._render(plan, deadline)])
        rate = plan.backend.sample_rate
        framed = wav_header(len(pcm), rate) + pcm if audio_format is AudioFormat.WAV else pcm
        timings = plan.timings()  # synthesis time only: scoring is reported, not hidden in it
        score = await self._score(plan, pcm, deadline)
        return Synthesis(framed, rate, audio_format, plan.selection, timings, len(pcm) / 2 / rate, score)

    async def stream(
        self, request: SynthesisRequest, audio_format: AudioFormat, deadline: float | None = None
    ) -> AsyncIterator[Chunk | StreamEnd]:
        plan = await self.plan(request, deadline)
        total = 0
        spoken: list[bytes] = []  # kept only when this stream is scored
        async for chunk in self._render(plan, deadline):
            total += len(chunk.pcm16)
            if plan.score_reference is not None:
                spoken.append(chunk.pcm16)
            yield chunk
        header = wav_header(total, plan.backend.sample_rate) if audio_format is AudioFormat.WAV else b""
        timings = plan.timings()
        score = await self._score(plan, b"".join(spoken), deadline)
        yield StreamEnd(len(plan.segments), plan.backend.sample_rate, timings, header, score)

    async def plan(self, request: SynthesisRequest, deadline: float | None = None) -> RequestPlan:
        """Check the request and decide its voice (asking the Embedder): everything but speaking."""
        started = time.perf_counter()
        backend = self._backend(request.backend)
        language = self._language(backend, request.language)
        speed = self._speed(backend, request.speed)
        segments = backend.segments(text_mod.normalise(request.text, self.settings.max_text_chars), language)
        sources = [x is not None for x in (request.reference_audio, request.voice_id, request.conditioning)]
        if sum(sources) != 1:
            raise InvalidInput(
                "set exactly one of reference_audio, voice_id or conditioning",
                fields=("reference_audio", "voice_id", "conditioning"),
            )
        if request.conditioning is not None:
            self._check_inline(backend, request)
        # Conditioning time includes a backend's one-time warm-up through the Embedder (first request only).
        conditioning_started = time.perf_counter()
        await self._ensure_warm(backend)
        tracing.annotate({tracing.BACKEND: backend.name, tracing.SENTENCES: len(segments)})
        if request.conditioning is not None:
            conditioning, cache_hit, cache_key = request.conditioning, False, ""
        else:
            source = "voice_id" if request.voice_id is not None else "reference_audio"
            with tracing.span("voxcache.conditioning", {tracing.SOURCE: source, tracing.ENCODER: backend.encoder}):
                answer = await self.embedder.embed(
                    audio=request.reference_audio, voice_id=request.voice_id, encoder=backend.encoder, deadline=deadline
                )
                tracing.annotate({tracing.CACHE_HIT: answer.cache_hit})
            conditioning, cache_hit, cache_key = answer.tensors, answer.cache_hit, answer.cache_key
        voice = backend.plan(conditioning, request.options)
        embed_ms = (time.perf_counter() - conditioning_started) * 1000
        selection = VoiceSelection(backend.name, voice.backend_voice, voice.similarity, cache_hit, cache_key)
        reference = None
        if self.scorer.wanted(request.score):
            reference = ScoreReference.of(
                encoder=backend.encoder,
                conditioning=conditioning,
                reference_audio=request.reference_audio,
                voice_id=request.voice_id,
            )
        return RequestPlan(backend, segments, voice, language, speed, selection, embed_ms, started, reference)

    async def close(self) -> None:
        for task in self._warm.values():
            task.cancel()
        await asyncio.gather(*self._warm.values(), return_exceptions=True)
        await self.embedder.close()

    async def _score(self, plan: RequestPlan, pcm: bytes, deadline: float | None) -> CloneScore | None:
        if plan.score_reference is None:
            return None
        return await self.scorer.score(pcm, plan.backend.sample_rate, plan.score_reference, plan.backend.name, deadline)

    async def _render(self, plan: RequestPlan, deadline: float | None) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        backend, rate = plan.backend, plan.backend.sample_rate
        for index, segment in enumerate(plan.segments):
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded(f"deadline passed after {index} of {len(plan.segments)} sentences")
            work = partial(backend.synthesize, segment, plan.voice, language=plan.language, speed=plan.speed)
            attributes = {
                tracing.BACKEND: backend.name,
                tracing.SENTENCE_INDEX: index,
                tracing.SENTENCE_CHARS: len(segment.text),
            }
            with tracing.span("voxcache.synthesize.sentence", attributes):  # closed before the yield
                samples = await loop.run_in_executor(self._pool, work)
                tracing.annotate({tracing.SAMPLES: len(samples)})
            yield Chunk(index, segment.text, to_pcm16(samples), rate, plan.selection if index == 0 else None)

    # -- validation -------------------------------------------------------------------
    def _backend(self, name: str) -> Backend:
        backend = self.backends.get(name or self.default_backend)
        if backend is None:
            available = ", ".join(sorted(self.backends))
            raise InvalidInput(f"unknown backend {name!r}; available: {available}", field="backend")
        return backend

    @staticmethod
    def _language(backend: Backend, language: str) -> str:
        language = (language or "en").lower()
        if language not in backend.languages:
            supported = ", ".join(sorted(backend.languages))
            raise InvalidInput(
                f"language {language!r} is not supported by the {backend.name} backend; supported: {supported}",
                field="language",
            )
        return language

    @staticmethod
    def _speed(backend: Backend, speed: float) -> float:
        if speed == 0:
            return 1.0
        if not (math.isfinite(speed) and MIN_SPEED <= speed <= MAX_SPEED):
            raise InvalidInput(f"speed {speed:g} is outside {MIN_SPEED:g}-{MAX_SPEED:g}", field="speed")
        if speed != 1.0 and not backend.variable_speed:
            raise InvalidInput(
                f"speed {speed:g} is not supported by the {backend.name} backend, which speaks at speed 1 only",
                field="speed",
            )
        return speed

    @staticmethod
    def _check_inline(backend: Backend, request: SynthesisRequest) -> None:
        conditioning = request.conditioning or {}
        if request.conditioning_encoder and request.conditioning_encoder != backend.encoder:
            raise InvalidInput(
                f"conditioning comes from encoder {request.conditioning_encoder!r}, but the {backend.name} backend "
                f"needs {backend.encoder!r}",
                field="conditioning.encoder",
            )
        for name, shape in backend.required_tensors.items():
            array = conditioning.get(name)
            where = f"conditioning.tensors[{name}]"
            if array is None:
                raise InvalidInput(f"conditioning lacks tensor {name!r}", field="conditioning.tensors")
            fits = array.ndim == len(shape) and all(w in (None, d) for w, d in zip(shape, array.shape, strict=True))
            if not fits:
                raise InvalidInput(f"tensor {name!r} has shape {tuple(array.shape)}, expected {shape}", field=where)
            if not np.isfinite(array).all():
                raise InvalidInput(f"tensor {name!r} contains NaN or infinity", field=where)

    async def _ensure_warm(self, backend: Backend) -> None:
        """Run backend.warm_up once; a failed attempt is forgotten so the next request retries."""
        task = self._warm.get(backend.name)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(backend.warm_up(self._embed_audio))
            self._warm[backend.name] = task
        await asyncio.shield(task)

    async def _embed_audio(self, audio: bytes, encoder: str) -> Mapping[str, np.ndarray]:
        return (await self.embedder.embed(audio=audio, encoder=encoder, pin=True)).tensors
