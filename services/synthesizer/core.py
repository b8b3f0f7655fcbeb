"""The Synthesizer: text + a voice in, sentences of audio out.

Plain asyncio, no gRPC. Everything that can be wrong with a request is checked
before the Embedder is asked or a model runs; the conditioning always comes
from the Embedder (or from the caller, inline), never from a local computation.
Unary and streaming calls share `render`, so their audio is byte-identical.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from services.common.errors import DeadlineExceeded, InvalidInput
from services.synthesizer import text as text_mod
from services.synthesizer.backends.base import Backend, Segment, VoicePlan
from services.synthesizer.embedder_client import EmbedderGateway
from services.synthesizer.wav import to_pcm16

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


@dataclass(frozen=True)
class SynthesizerConfig:
    max_text_chars: int = 2000
    min_speed: float = 0.5
    max_speed: float = 2.0


@dataclass
class Prepared:
    backend: Backend
    segments: list[Segment]
    plan: VoicePlan
    language: str
    speed: float
    cache_hit: bool
    cache_key: str
    embed_ms: float
    started: float


@dataclass(frozen=True)
class Chunk:
    index: int
    sentence: str
    pcm16: bytes


class Synthesizer:
    def __init__(
        self,
        backends: Mapping[str, Backend],
        *,
        default_backend: str,
        embedder: EmbedderGateway,
        model_pool: ThreadPoolExecutor,
        config: SynthesizerConfig = SynthesizerConfig(),
    ) -> None:
        if default_backend not in backends:
            raise ValueError(f"default backend {default_backend!r} is not among {sorted(backends)}")
        self.backends = dict(backends)
        self.default_backend = default_backend
        self.embedder = embedder
        self.config = config
        self._pool = model_pool
        self._prepared: dict[str, asyncio.Task[None]] = {}

    # -- public API -------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Prepare every backend now (tolerating an Embedder that is not up yet)."""
        for name in self.backends:
            try:
                await self._ensure_prepared(self.backends[name])
            except Exception as exc:  # retried on the first request that needs it
                log.warning("backend %s not prepared yet (%s); will retry on first use", name, exc)

    async def prepare(self, request: SynthesisRequest, deadline: float | None = None) -> Prepared:
        started = time.perf_counter()
        backend = self._backend(request.backend)
        language = self._language(backend, request.language)
        speed = self._speed(request.speed)
        segments = backend.segments(text_mod.normalise(request.text, self.config.max_text_chars), language)
        sources = [x is not None for x in (request.reference_audio, request.voice_id, request.conditioning)]
        if sum(sources) != 1:
            raise InvalidInput("set exactly one of reference_audio, voice_id or conditioning", field="voice")
        if request.conditioning is not None:
            self._check_inline(backend, request)
        # Conditioning time includes a backend's one-time set-up through the Embedder (first request only).
        conditioning_started = time.perf_counter()
        await self._ensure_prepared(backend)
        if request.conditioning is not None:
            plan = backend.plan(request.conditioning, request.options)
            embed_ms = (time.perf_counter() - conditioning_started) * 1000
            return Prepared(backend, segments, plan, language, speed, False, "", embed_ms, started)
        answer = await self.embedder.embed(
            audio=request.reference_audio, voice_id=request.voice_id, encoder=backend.encoder, deadline=deadline
        )
        plan = backend.plan(answer.tensors, request.options)
        embed_ms = (time.perf_counter() - conditioning_started) * 1000
        return Prepared(backend, segments, plan, language, speed, answer.cache_hit, answer.cache_key, embed_ms, started)

    async def render(self, prepared: Prepared, deadline: float | None = None) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        backend = prepared.backend
        for index, segment in enumerate(prepared.segments):
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded(f"deadline passed after {index} of {len(prepared.segments)} sentences")
            work = partial(backend.synthesize, segment, prepared.plan, language=prepared.language, speed=prepared.speed)
            samples = await loop.run_in_executor(self._pool, work)
            yield Chunk(index, segment.text, to_pcm16(samples))

    async def close(self) -> None:
        for task in self._prepared.values():
            task.cancel()
        await asyncio.gather(*self._prepared.values(), return_exceptions=True)
        await self.embedder.close()

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

    def _speed(self, speed: float) -> float:
        if speed == 0:
            return 1.0
        if not (math.isfinite(speed) and self.config.min_speed <= speed <= self.config.max_speed):
            raise InvalidInput(
                f"speed {speed:g} is outside {self.config.min_speed:g}-{self.config.max_speed:g}", field="speed"
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

    async def _ensure_prepared(self, backend: Backend) -> None:
        """Run backend.prepare once; a failed attempt is forgotten so the next request retries."""
        task = self._prepared.get(backend.name)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(backend.prepare(self._embed_audio))
            self._prepared[backend.name] = task
        await asyncio.shield(task)

    async def _embed_audio(self, audio: bytes, encoder: str) -> Mapping[str, np.ndarray]:
        return (await self.embedder.embed(audio=audio, encoder=encoder, pin=True)).tensors
