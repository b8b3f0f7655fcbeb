"""The Embedder: reference audio or a voice name in, cached Conditioning out.

Plain asyncio, no gRPC: the servicer is a thin translation layer over this class
and tests drive it directly. The hot path (a hit) hashes the bytes and looks up
L1 then Redis; it never decodes audio and never touches the model. A miss is
single-flighted per key, decoded off the event loop, and run on a dedicated,
fixed-size model thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from services.common.errors import AlreadyExists, InvalidInput, NotFound, Overloaded, ServiceError, Unavailable
from services.embedder import audio as audio_mod
from services.embedder.cache import keys, record
from services.embedder.cache.local import LocalCache
from services.embedder.cache.redis_store import RedisStore, StoreUnavailable
from services.embedder.cache.singleflight import SingleFlight
from services.embedder.conditioning import Conditioning
from services.embedder.encoders.base import Encoder
from services.embedder.metrics import EmbedderStats
from services.embedder.voices import VoiceRecord, validate_voice_id

log = logging.getLogger(__name__)

SOURCE_LOCAL, SOURCE_REDIS, SOURCE_COMPUTED = "local", "redis", "computed"


@dataclass(frozen=True)
class CachePolicy:
    ttl_s: int = 0  # 0: the server default
    bypass: bool = False
    pin: bool = False


@dataclass
class Timings:
    total_ms: float = 0.0
    cache_ms: float = 0.0
    decode_ms: float = 0.0
    extract_ms: float = 0.0


@dataclass(frozen=True)
class EmbedResult:
    conditioning: Conditioning
    source: str
    timings: Timings

    @property
    def cache_hit(self) -> bool:
        return self.source != SOURCE_COMPUTED


@dataclass(frozen=True)
class PreloadItem:
    audio: bytes
    label: str = ""
    encoder: str = ""
    policy: CachePolicy = CachePolicy()


@dataclass
class PreloadFailure:
    index: int
    label: str
    code: str
    message: str


@dataclass
class PreloadSummary:
    received: int = 0
    computed: int = 0
    cached: int = 0
    failures: list[PreloadFailure] = field(default_factory=list)
    total_ms: float = 0.0


@dataclass(frozen=True)
class EmbedderConfig:
    prefix: str = "voxcache"
    default_ttl_s: int = 7 * 24 * 3600
    #: Extractions queued or running before new misses get RESOURCE_EXHAUSTED.
    max_pending_extractions: int = 64
    #: Preload clips processed concurrently (the model pool still serialises them).
    preload_concurrency: int = 4
    #: How long a voice record fetched from Redis is trusted before it is fetched again.
    #: A DeleteVoice or overwrite on another worker reaches this one within this time.
    voice_cache_s: float = 1.0
    limits: audio_mod.AudioLimits = field(default_factory=audio_mod.AudioLimits)


@dataclass
class _Computed:
    conditioning: Conditioning
    decode_ms: float
    extract_ms: float


class Embedder:
    def __init__(
        self,
        encoders: Mapping[str, Encoder],
        *,
        default_encoder: str,
        local: LocalCache,
        store: RedisStore | None,
        model_pool: ThreadPoolExecutor,
        stats: EmbedderStats | None = None,
        config: EmbedderConfig = EmbedderConfig(),
    ) -> None:
        if default_encoder not in encoders:
            raise ValueError(f"default encoder {default_encoder!r} is not among {sorted(encoders)}")
        self.encoders = dict(encoders)
        self.default_encoder = default_encoder
        self.local = local
        self.store = store
        self.config = config
        self.stats = stats or EmbedderStats()
        self._pool = model_pool
        self._flights: SingleFlight[_Computed] = SingleFlight()
        self._pending = 0
        #: Voices seen by this process (and when): a short-lived cache, and the fallback while Redis is down.
        self._voices: dict[str, VoiceRecord] = {}
        self._voice_seen: dict[str, float] = {}
        #: Keys this process has already pinned in Redis, so pinned hits do not rewrite them.
        self._pinned: set[str] = set()
        #: Reference audio of voices, kept in memory only when there is no Redis at all.
        self._voice_audio: dict[str, bytes] = {}
        self._touched: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- public API -------------------------------------------------------------------
    async def embed(
        self,
        *,
        audio: bytes | None = None,
        voice_id: str | None = None,
        encoder: str = "",
        policy: CachePolicy = CachePolicy(),
    ) -> EmbedResult:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self._embed(audio, voice_id, encoder, policy, started)
            outcome = {SOURCE_LOCAL: "hit_local", SOURCE_REDIS: "hit_redis"}.get(result.source, "miss")
            return result
        finally:
            self.stats.record_request(outcome, time.perf_counter() - started)

    async def register_voice(
        self, voice_id: str, audio: bytes, *, encoder: str = "", overwrite: bool = False
    ) -> tuple[VoiceRecord, EmbedResult]:
        validate_voice_id(voice_id)
        audio_mod.check_size(audio, self.config.limits)
        previous = await self._find_voice(voice_id)
        if previous is not None and not overwrite:
            raise AlreadyExists(f"voice {voice_id!r} already exists; set overwrite to replace it", field="voice_id")
        result = await self.embed(audio=audio, encoder=encoder, policy=CachePolicy(pin=True))
        digest = keys.audio_sha256(audio)
        voice = VoiceRecord(
            voice_id=voice_id,
            audio_sha256=digest,
            duration_s=round(audio_mod.probe_duration(audio), 3),
            created_unix_ms=int(time.time() * 1000),
            pinned={result.conditioning.encoder: result.conditioning.cache_key},
        )
        if self.store is None:
            self._voice_audio[digest] = audio
        else:
            try:
                await self.store.put(keys.voice_audio(self.config.prefix, digest), audio, None)
                created = await self.store.hset(self._voices_key, voice_id, voice.to_json(), only_new=not overwrite)
            except StoreUnavailable as exc:
                raise Unavailable(f"voice registry (Redis) is unreachable; voice {voice_id!r} not registered") from exc
            if not created:
                raise AlreadyExists(f"voice {voice_id!r} was registered concurrently", field="voice_id")
        self._remember_voice(voice)
        if previous is not None and previous.audio_sha256 != digest:
            await self._release(previous)
        return voice, result

    async def delete_voice(self, voice_id: str) -> VoiceRecord:
        validate_voice_id(voice_id)
        voice = await self._find_voice(voice_id)
        if voice is None:
            raise NotFound(f"voice {voice_id!r} is not registered", field="voice_id")
        if self.store is not None:
            try:
                await self.store.hdel(self._voices_key, voice_id)
            except StoreUnavailable as exc:
                raise Unavailable(f"voice registry (Redis) is unreachable; voice {voice_id!r} not deleted") from exc
        self._forget_voice(voice_id)
        await self._release(voice)
        return voice

    async def list_voices(self) -> list[VoiceRecord]:
        if self.store is None:
            return sorted(self._voices.values(), key=lambda v: v.voice_id)
        try:
            raw = await self.store.hgetall(self._voices_key)
        except StoreUnavailable as exc:
            raise Unavailable("voice registry (Redis) is unreachable") from exc
        return sorted((VoiceRecord.from_json(v) for v in raw.values()), key=lambda v: v.voice_id)

    async def preload(self, items: AsyncIterable[PreloadItem]) -> PreloadSummary:
        summary = PreloadSummary()
        started = time.perf_counter()
        gate = asyncio.Semaphore(self.config.preload_concurrency)
        tasks: list[asyncio.Task[None]] = []

        async def one(index: int, item: PreloadItem) -> None:
            try:
                result = await self.embed(audio=item.audio, encoder=item.encoder, policy=item.policy)
            except ServiceError as exc:
                summary.failures.append(PreloadFailure(index, item.label, exc.code.name, exc.message))
            else:
                if result.cache_hit:
                    summary.cached += 1
                else:
                    summary.computed += 1
            finally:
                gate.release()

        try:
            async for item in items:
                await gate.acquire()  # back-pressure: stop reading the stream while clips queue
                tasks.append(asyncio.create_task(one(summary.received, item)))
                summary.received += 1
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        summary.failures.sort(key=lambda f: f.index)
        summary.total_ms = (time.perf_counter() - started) * 1000
        return summary

    async def redis_entries(self) -> int:
        if self.store is None:
            return -1
        try:
            return await self.store.dbsize()
        except StoreUnavailable:
            return -1

    @property
    def redis_available(self) -> bool:
        return self.store is not None and self.store.available

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.store is not None:
            await self.store.close()

    # -- internals --------------------------------------------------------------------
    @property
    def _voices_key(self) -> str:
        return keys.voices(self.config.prefix)

    def _encoder(self, name: str) -> Encoder:
        encoder = self.encoders.get(name or self.default_encoder)
        if encoder is None:
            raise InvalidInput(
                f"unknown encoder {name!r}; available: {', '.join(sorted(self.encoders))}", field="encoder"
            )
        return encoder

    async def _embed(
        self, audio: bytes | None, voice_id: str | None, encoder_name: str, policy: CachePolicy, started: float
    ) -> EmbedResult:
        encoder = self._encoder(encoder_name)
        ttl = policy.ttl_s or self.config.default_ttl_s
        voice: VoiceRecord | None = None
        if voice_id is not None:
            voice = await self._resolve_voice(voice_id)
            digest = voice.audio_sha256
            load_audio: Callable[[], Awaitable[bytes]] = lambda: self._voice_audio_bytes(voice)  # noqa: E731
            pin = True  # a registered voice's conditioning never expires
        elif audio is not None:
            audio_mod.check_size(audio, self.config.limits)
            digest = keys.audio_sha256(audio)

            async def load_audio() -> bytes:
                return audio

            pin = policy.pin
        else:
            raise InvalidInput("set exactly one of audio or voice_id", field="source")
        key = keys.conditioning(self.config.prefix, encoder.name, encoder.weights_digest, digest)

        if not policy.bypass:
            found = await self._lookup(key, encoder, ttl)
            if found is not None:
                conditioning, source = found
                await self._keep(conditioning, pin, voice)
                cache_ms = (time.perf_counter() - started) * 1000
                return EmbedResult(conditioning, source, Timings(cache_ms, cache_ms))
        cache_ms = (time.perf_counter() - started) * 1000

        async def compute() -> _Computed:
            computed = await self._compute(key, encoder, await load_audio())
            if not policy.bypass:
                self.local.put(computed.conditioning)
                await self._store(computed.conditioning, None if pin else ttl)
            return computed

        if policy.bypass:
            computed = await self._admit(compute)
        else:
            computed, joined = await self._flights.run(key, lambda: self._admit(compute))
            if joined:
                self.stats.coalesced += 1
            # A joiner may want a pin the leader did not ask for.
            await self._keep(computed.conditioning, pin, voice)
        total_ms = (time.perf_counter() - started) * 1000
        return EmbedResult(
            computed.conditioning,
            SOURCE_COMPUTED,
            Timings(total_ms, cache_ms, computed.decode_ms, computed.extract_ms),
        )

    async def _admit(self, work: Callable[[], Awaitable[_Computed]]) -> _Computed:
        if self._pending >= self.config.max_pending_extractions:
            raise Overloaded(f"{self._pending} extractions already queued; retry with backoff")
        self._pending += 1
        try:
            return await work()
        finally:
            self._pending -= 1

    async def _compute(self, key: str, encoder: Encoder, data: bytes) -> _Computed:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        decoded = await loop.run_in_executor(
            None, lambda: audio_mod.decode(data, self.config.limits, target_rate=encoder.sample_rate)
        )
        t1 = time.perf_counter()
        tensors = await loop.run_in_executor(self._pool, encoder.encode, decoded.samples)
        t2 = time.perf_counter()
        self.stats.record_extraction(t2 - t1)
        for array in tensors.values():
            array.setflags(write=False)
        conditioning = Conditioning(encoder.name, encoder.weights_digest, key, tensors)
        return _Computed(conditioning, (t1 - t0) * 1000, (t2 - t1) * 1000)

    async def _lookup(self, key: str, encoder: Encoder, ttl: int) -> tuple[Conditioning, str] | None:
        conditioning = self.local.get(key)
        if conditioning is not None:
            self._slide_later(key, ttl)
            return conditioning, SOURCE_LOCAL
        if self.store is None:
            return None
        try:
            raw = await self.store.get_sliding(key, ttl)
        except StoreUnavailable:
            return None
        if raw is None:
            return None
        try:
            tensors = record.decode(key, raw)
        except record.RecordError as exc:
            self.stats.corrupt_entries += 1
            log.warning("corrupt cache entry %s (%s); recomputing", key, exc)
            await self._best_effort(self.store.delete(key))
            return None
        conditioning = Conditioning(encoder.name, encoder.weights_digest, key, tensors)
        self.local.put(conditioning)
        return conditioning, SOURCE_REDIS

    def _slide_later(self, key: str, ttl: int) -> None:
        """An L1 hit skips Redis, so refresh the shared TTL now and then in the background.

        Without this a voice hot in every worker's L1 would expire in Redis and
        cost a new worker an extraction.
        """
        if self.store is None:
            return
        now = time.monotonic()
        if now - self._touched.get(key, 0.0) < min(60.0, ttl / 10):
            return
        if len(self._touched) > 100_000:
            self._touched.clear()
        self._touched[key] = now
        task = asyncio.create_task(self._slide(key, ttl))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _keep(self, conditioning: Conditioning, pin: bool, voice: VoiceRecord | None) -> None:
        """Make sure a pinned request's entry is pinned (once per key per process) and that a
        voice records which entry it pins, whoever computed or stored the entry first."""
        if pin and conditioning.cache_key not in self._pinned:
            await self._store(conditioning, None)
        if voice is not None and voice.pinned.get(conditioning.encoder) != conditioning.cache_key:
            await self._remember_pin(voice, conditioning.encoder, conditioning.cache_key)

    async def _slide(self, key: str, ttl: int) -> None:
        if self.store is not None:
            await self._best_effort(self.store.slide(key, ttl))

    async def _store(self, conditioning: Conditioning, ttl: int | None) -> None:
        if self.store is None:
            return
        value = record.encode(conditioning.cache_key, conditioning.tensors)
        try:
            await self.store.put(conditioning.cache_key, value, ttl)
        except StoreUnavailable:
            return  # counted and logged by the store; the request is served regardless
        if ttl is None:
            if len(self._pinned) > 100_000:
                self._pinned.clear()
            self._pinned.add(conditioning.cache_key)

    async def _best_effort(self, operation: Awaitable[object]) -> None:
        try:
            await operation
        except StoreUnavailable:
            pass  # counted and logged by the store; the request is served regardless

    async def _find_voice(self, voice_id: str) -> VoiceRecord | None:
        if self.store is None:
            return self._voices.get(voice_id)
        try:
            raw = await self.store.hget(self._voices_key, voice_id)
        except StoreUnavailable as exc:
            raise Unavailable("voice registry (Redis) is unreachable") from exc
        if raw is None:
            self._forget_voice(voice_id)
            return None
        voice = VoiceRecord.from_json(raw)
        self._remember_voice(voice)
        return voice

    def _remember_voice(self, voice: VoiceRecord) -> None:
        self._voices[voice.voice_id] = voice
        self._voice_seen[voice.voice_id] = time.monotonic()

    def _forget_voice(self, voice_id: str) -> None:
        self._voices.pop(voice_id, None)
        self._voice_seen.pop(voice_id, None)

    async def _resolve_voice(self, voice_id: str) -> VoiceRecord:
        validate_voice_id(voice_id)
        known = self._voices.get(voice_id)
        if known is not None and time.monotonic() - self._voice_seen[voice_id] < self.config.voice_cache_s:
            return known  # fresh enough: a hit by voice_id needs no Redis round trip
        try:
            voice = await self._find_voice(voice_id)
        except Unavailable:
            voice = self._voices.get(voice_id)  # fail open: the last record this process saw
            if voice is None:
                raise Unavailable(
                    f"voice registry (Redis) is unreachable and voice {voice_id!r} is not known to this Embedder"
                ) from None
        if voice is None:
            raise InvalidInput(f"unknown voice_id {voice_id!r}; register it with RegisterVoice first", field="voice_id")
        return voice

    async def _voice_audio_bytes(self, voice: VoiceRecord) -> bytes:
        if self.store is None:
            data = self._voice_audio.get(voice.audio_sha256)
        else:
            try:
                data = await self.store.get(keys.voice_audio(self.config.prefix, voice.audio_sha256))
            except StoreUnavailable as exc:
                raise Unavailable(
                    f"voice {voice.voice_id!r} must be re-derived but its audio is in Redis, which is unreachable"
                ) from exc
        if data is None:
            raise Unavailable(f"reference audio of voice {voice.voice_id!r} is missing; register it again")
        return data

    async def _remember_pin(self, voice: VoiceRecord, encoder: str, key: str) -> None:
        old = voice.pinned.get(encoder)
        voice.pinned[encoder] = key
        if self.store is not None:
            await self._best_effort(self.store.hset(self._voices_key, voice.voice_id, voice.to_json(), only_new=False))
            if old is not None:
                self._pinned.discard(old)
                await self._best_effort(self.store.expire(old, self.config.default_ttl_s))

    async def _release(self, voice: VoiceRecord) -> None:
        """Unpin what only this voice held: its conditioning gets the default TTL, its audio goes."""
        if self.store is None:
            if not any(v.audio_sha256 == voice.audio_sha256 for v in self._voices.values()):
                self._voice_audio.pop(voice.audio_sha256, None)
            return
        try:
            others = await self.list_voices()
        except Unavailable:
            return
        if any(v.audio_sha256 == voice.audio_sha256 for v in others):
            return
        for key in voice.pinned.values():
            self._pinned.discard(key)
            await self._best_effort(self.store.expire(key, self.config.default_ttl_s))
        await self._best_effort(self.store.delete(keys.voice_audio(self.config.prefix, voice.audio_sha256)))
