"""The Embedder: reference audio or a voice name in, cached Conditioning out.

Thin orchestration of audio -> key -> cache -> encoder, in plain asyncio with no gRPC:
the servicer translates, tests call this class directly. The cache (`TieredCache`) owns
the tiers, single-flight and fail-open; the registry (`VoiceRegistry`) owns where voices
live; this class owns the order of things and the model's thread pool. Models never run
on the event loop: audio is decoded on the default executor and encoded on a dedicated,
fixed-size pool, through one `MicroBatcher` per encoder (batching.py; off by default).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from services.common import tracing
from services.common.errors import (
    AlreadyExists,
    ErrorKind,
    InvalidInput,
    NotFound,
    Resource,
    ServiceError,
    Unavailable,
)
from services.embedder import audio as audio_mod
from services.embedder.admission import Admission
from services.embedder.batching import MicroBatcher
from services.embedder.cache import keys
from services.embedder.cache.hotness import Hotness, WarmStart, warm
from services.embedder.cache.reencode import PcmIndex
from services.embedder.cache.tiered import CachePolicy, CacheTier, TieredCache
from services.embedder.cache.writeback import write_back_figures
from services.embedder.conditioning import Conditioning, check_tensors
from services.embedder.encoders.base import Encoder
from services.embedder.fleet import Fleet
from services.embedder.metrics import EmbedderSnapshot, EmbedderStats
from services.embedder.settings import EmbedderSettings
from services.embedder.similarity import SimilarityStats, cosine, label_of, reference_vector
from services.embedder.voices import Voice, VoiceRegistries, VoiceRegistry, validate_voice_id
from services.embedder.voices.search import VoiceIndexes, searched_tensor
from voxcache.tensors import SPEAKER as SPEAKER_TENSOR

log = logging.getLogger(__name__)

#: ResourceInfo.resource_type of a registered voice: the proto message that describes one.
VOICE_RESOURCE_TYPE = "voxcache.v1.Voice"
#: The encoder whose embeddings speaker similarity is measured with (the SIM of TTS papers uses a speaker verifier).
SCORING_ENCODER = "ecapa"


def voice_resource(voice_id: str) -> Resource:
    return Resource(VOICE_RESOURCE_TYPE, voice_id)


@dataclass(frozen=True)
class CacheOptions:
    """What a caller may ask of the cache for one request."""

    ttl_s: int = 0  # 0: the server's default
    bypass: bool = False
    pin: bool = False


@dataclass(slots=True)
class Timings:
    total_ms: float = 0.0
    cache_ms: float = 0.0
    decode_ms: float = 0.0
    extract_ms: float = 0.0


@dataclass(slots=True)  # not frozen: made on every hit, and a frozen dataclass costs ~4x to make
class EmbedResult:
    conditioning: Conditioning
    tier: CacheTier
    timings: Timings

    @property
    def cache_hit(self) -> bool:
        return self.tier is not CacheTier.COMPUTED


#: SearchVoices: the most voices one search returns, and how many when the caller says 0.
MAX_K = 100
DEFAULT_K = 10


@dataclass(frozen=True)
class SearchQuery:
    """What SearchVoices compares against: exactly one of a clip, a vector, conditioning
    tensors (with the encoder they claim, "" for none) or a registered voice."""

    audio: bytes | None = None
    vector: np.ndarray | None = None
    conditioning: Mapping[str, np.ndarray] | None = None
    conditioning_encoder: str = ""
    voice_id: str | None = None


@dataclass(frozen=True)
class VoiceHit:
    voice: Voice
    cosine: float


@dataclass(frozen=True)
class SearchResult:
    hits: list[VoiceHit]
    encoder: str
    #: Voices compared: the tenant's voices with a vector for the encoder (the query voice excluded).
    searched: int


@dataclass(frozen=True)
class PreloadItem:
    audio: bytes
    label: str = ""
    encoder: str = ""
    options: CacheOptions = CacheOptions()


@dataclass
class PreloadFailure:
    index: int
    label: str
    kind: ErrorKind
    message: str


@dataclass
class PreloadSummary:
    received: int = 0
    computed: int = 0
    cached: int = 0
    failures: list[PreloadFailure] = field(default_factory=list)
    total_ms: float = 0.0


@dataclass(frozen=True)
class SpeakerScore:
    """ScoreSpeaker's answer: the cosine, and where the reference and the time came from."""

    similarity: float
    reference_cache_hit: bool
    total_ms: float
    extract_ms: float


@dataclass
class _Extraction:
    """A miss's fill: the conditioning and where its time went."""

    conditioning: Conditioning
    decode_ms: float
    extract_ms: float
    #: Found through the PCM index (cache/reencode.py): already stored, no model time.
    stored: bool = False


def _hit_attributes(encoder: str, audio_bytes: int, tier: CacheTier) -> dict[str, str | bool | int]:
    return {
        tracing.ENCODER: encoder,
        tracing.AUDIO_BYTES: audio_bytes,
        tracing.TIER: tier.value,
        tracing.CACHE_HIT: True,
    }


class Embedder:
    def __init__(
        self,
        encoders: Mapping[str, Encoder],
        *,
        default_encoder: str,
        cache: TieredCache,
        voices: VoiceRegistries,
        model_pool: ThreadPoolExecutor,
        settings: EmbedderSettings,
        stats: EmbedderStats | None = None,
    ) -> None:
        if default_encoder not in encoders:
            raise ValueError(f"default encoder {default_encoder!r} is not among {sorted(encoders)}")
        self.encoders = dict(encoders)
        self.default_encoder = default_encoder
        self.cache = cache
        self.voices = voices
        self.settings = settings
        self.limits = settings.audio_limits
        self.stats = stats or EmbedderStats()
        self.similarity = SimilarityStats()
        self._pool = model_pool
        self.pcm_index = PcmIndex(cache, enabled=settings.reencode_aliases)
        self.hotness = Hotness(
            cache, settings.cache_prefix, flush_every_s=settings.hotness_flush_s, keep=settings.warm_start_entries
        )
        self.warmed = WarmStart()
        #: Who this process is among workers (server.worker_id), and the other workers' counters.
        self.worker = ""
        self.fleet: Fleet | None = None
        self._batchers = {
            encoder.name: MicroBatcher(
                encoder,
                model_pool,
                window_s=settings.batch_window_ms / 1000,
                max_batch=settings.max_batch,
                workers=settings.model_workers,
                on_pass=self.stats.record_forward_pass,
            )
            for encoder in self.encoders.values()
        }
        # With batching on, a slot is one clip's place in a batch: `max_batch` clips per model
        # worker may be decoded and gathered at once, or batching would never see a second clip.
        batching = any(batcher.batched for batcher in self._batchers.values())
        self._admission = Admission(
            settings.max_pending,
            workers=settings.model_workers,
            slots=settings.model_workers * (settings.max_batch if batching else 1),
            typical_s=self.stats.extraction_latency.median_s,
            on_shed=self.stats.record_shed,
        )
        self.indexes = VoiceIndexes(
            cache.store, voices, self._vector_of, prefix=settings.cache_prefix, sync_s=settings.search_sync_s
        )

    # -- requests -------------------------------------------------------------------------
    async def embed(
        self,
        *,
        audio: bytes | memoryview | None = None,
        voice_id: str | None = None,
        encoder: str = "",
        options: CacheOptions = CacheOptions(),
        deadline: float | None = None,
        tenant: str = "",
    ) -> EmbedResult:
        """`deadline` (time.monotonic() clock) lets admission refuse a miss it cannot finish in time;
        `tenant` ("" in anonymous mode) is whose voices and content cache the request sees.
        `audio` may be a view of the request's bytes (embed_request.py): a hit only hashes it."""
        started = time.perf_counter()
        tier: CacheTier | None = None
        try:
            result = await self._embed(audio, voice_id, self._encoder(encoder), options, started, deadline, tenant)
            tier = result.tier
            if not options.bypass:
                self.hotness.record(result.conditioning.cache_key)
            return result
        finally:
            self.stats.record_request(tier, time.perf_counter() - started)

    async def register_voice(
        self, voice_id: str, audio: bytes, *, encoder: str = "", overwrite: bool = False, tenant: str = ""
    ) -> tuple[Voice, EmbedResult]:
        validate_voice_id(voice_id)
        audio_mod.check_size(audio, self.limits)
        voices = self.voices.of(tenant)
        previous = await voices.find(voice_id)
        if previous is not None and not overwrite:
            raise AlreadyExists(
                f"voice {voice_id!r} already exists; set overwrite to replace it",
                field="voice_id",
                resource=voice_resource(voice_id),
            )
        result = await self.embed(audio=audio, encoder=encoder, options=CacheOptions(pin=True), tenant=tenant)
        voice = Voice(
            voice_id=voice_id,
            audio_sha256=keys.audio_sha256(audio),
            content_digest=keys.content_digest(audio),
            duration_s=round(audio_mod.probe_duration(audio), 3),
            created_unix_ms=int(time.time() * 1000),
            pinned={result.conditioning.encoder: result.conditioning.cache_key},
        )
        await voices.save(voice, audio, overwrite=overwrite)
        if previous is not None and previous.audio_sha256 != voice.audio_sha256:
            await self._release(previous, voices)
        await self.indexes.changed(tenant, voice_id, self._searched_vectors(result.conditioning))
        return voice, result

    async def delete_voice(self, voice_id: str, *, tenant: str = "") -> Voice:
        validate_voice_id(voice_id)
        voices = self.voices.of(tenant)
        voice = await voices.find(voice_id)
        if voice is None:
            raise NotFound(f"voice {voice_id!r} is not registered", field="voice_id", resource=voice_resource(voice_id))
        await voices.remove(voice_id)
        await self._release(voice, voices)
        await self.indexes.changed(tenant, voice_id, self._searched_vectors(None))
        return voice

    async def list_voices(self, *, tenant: str = "") -> list[Voice]:
        return await self.voices.of(tenant).all()

    async def search_voices(
        self, query: SearchQuery, *, k: int = 0, encoder: str = "", tenant: str = "", deadline: float | None = None
    ) -> SearchResult:
        """The k voices of `tenant` nearest to `query` by cosine of `encoder`'s searched vector.

        A clip is embedded as Embed would (and cached); a voice_id query uses the voice's own
        vector and is left out of its own results.
        """
        if k > MAX_K:
            raise InvalidInput(f"k {k} is over the limit of {MAX_K}", field="k")
        k = k or DEFAULT_K
        chosen = self._encoder(encoder)
        name, _ = searched_tensor(chosen)
        exclude: str | None = None
        where = "vector"
        if query.audio is not None:
            embedded = await self.embed(audio=query.audio, encoder=chosen.name, deadline=deadline, tenant=tenant)
            wanted: np.ndarray | None = embedded.conditioning.tensors[name]
        elif query.vector is not None:
            wanted = query.vector
        elif query.conditioning is not None:
            wanted = self._searched_input(query, chosen, name)
            where = f"conditioning.tensors[{name}]"
        elif query.voice_id is not None:
            voice = await self._resolve_voice(query.voice_id, self.voices.of(tenant))
            exclude = voice.voice_id
            wanted = (await self.indexes.index(tenant, chosen)).vector(voice.voice_id)
            if wanted is None:  # no vector for this encoder yet: derive it (a cache hit for its own encoder)
                embedded = await self.embed(
                    voice_id=voice.voice_id, encoder=chosen.name, deadline=deadline, tenant=tenant
                )
                wanted = embedded.conditioning.tensors[name]
        else:
            raise InvalidInput(
                "set exactly one of audio, vector, conditioning or voice_id",
                fields=("audio", "vector", "conditioning", "voice_id"),
            )
        index = await self.indexes.index(tenant, chosen)
        try:
            unit = index.unit(wanted)
        except ValueError as exc:
            raise InvalidInput(f"{where} cannot be searched with {chosen.name}: {exc}", field=where) from exc
        found, searched = await self.indexes.search(tenant, chosen, unit, k, exclude=exclude)
        voices = await self.voices.of(tenant).many([voice_id for voice_id, _ in found])
        hits = [VoiceHit(voice, cosine) for (_, cosine), voice in zip(found, voices, strict=True) if voice is not None]
        return SearchResult(hits, chosen.name, searched)

    async def preload(self, items: AsyncIterable[PreloadItem], *, tenant: str = "") -> PreloadSummary:
        summary = PreloadSummary()
        started = time.perf_counter()
        gate = asyncio.Semaphore(self.settings.preload_concurrency)
        tasks: list[asyncio.Task[None]] = []

        async def one(index: int, item: PreloadItem) -> None:
            try:
                result = await self.embed(audio=item.audio, encoder=item.encoder, options=item.options, tenant=tenant)
            except ServiceError as exc:
                summary.failures.append(PreloadFailure(index, item.label, exc.kind, exc.message))
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

    async def score_speaker(
        self,
        audio: bytes,
        *,
        reference_audio: bytes | None = None,
        voice_id: str | None = None,
        reference: Mapping[str, np.ndarray] | None = None,
        reference_encoder: str = "",
        backend: str = "",
        deadline: float | None = None,
        tenant: str = "",
    ) -> SpeakerScore:
        """The cosine between the ECAPA embeddings of `audio` (generated speech) and of a reference.

        `audio` is one-off output: it is decoded and embedded under admission like a miss, but
        never keyed, looked up or stored in any tier. The reference (audio or voice) goes
        through `embed` and its cache; inline conditioning is used as given. Every outcome is
        counted under the caller's backend label.
        """
        label = label_of(backend)
        started = time.perf_counter()
        try:
            encoder = self.encoders.get(SCORING_ENCODER)
            if encoder is None:
                raise Unavailable(f"this Embedder runs no {SCORING_ENCODER} encoder, which speaker scoring needs")
            if sum(x is not None for x in (reference_audio, voice_id, reference)) != 1:
                raise InvalidInput(
                    "set exactly one of reference_audio, voice_id or reference_conditioning",
                    fields=("reference_audio", "voice_id", "reference_conditioning"),
                )
            audio_mod.check_size(audio, self.limits)
            if reference is not None:
                if reference_encoder and reference_encoder != encoder.name:
                    raise InvalidInput(
                        f"reference conditioning comes from encoder {reference_encoder!r}; scoring needs "
                        f"{encoder.name!r}",
                        field="reference_conditioning.encoder",
                    )
                wanted, cache_hit = reference_vector(reference), False
            else:
                found = await self._reference(reference_audio, voice_id, encoder.name, deadline, tenant)
                wanted, cache_hit = found.conditioning.tensors[SPEAKER_TENSOR], found.cache_hit
            spoken, extract_ms = await self._admission.run(lambda: self._embed_uncached(audio, encoder), deadline)
            value = cosine(spoken, wanted)
        except ServiceError:
            self.similarity.record_failure(label)
            raise
        self.similarity.record(label, value)
        return SpeakerScore(value, cache_hit, (time.perf_counter() - started) * 1000, extract_ms)

    async def _reference(
        self, audio: bytes | None, voice_id: str | None, encoder: str, deadline: float | None, tenant: str
    ) -> EmbedResult:
        """The reference's conditioning through the cache; a fault in its audio names `reference_audio`."""
        try:
            return await self.embed(audio=audio, voice_id=voice_id, encoder=encoder, deadline=deadline, tenant=tenant)
        except ServiceError as exc:
            if exc.fields != ("audio",):
                raise
            raise ServiceError(
                f"reference_audio: {exc.message}", field="reference_audio", resource=exc.resource, kind=exc.kind
            ) from exc

    async def _embed_uncached(self, data: bytes, encoder: Encoder) -> tuple[np.ndarray, float]:
        """One clip's speaker vector straight from the model: no key, no cache, no single-flight."""
        loop = asyncio.get_running_loop()
        decoded = await loop.run_in_executor(
            None, lambda: audio_mod.decode(data, self.limits, target_rate=encoder.sample_rate)
        )
        started = time.perf_counter()
        try:
            tensors = await self._batchers[encoder.name].encode(decoded.samples)
        except (RuntimeError, ValueError, FloatingPointError) as exc:
            raise InvalidInput(f"the {encoder.name} model could not use this audio: {exc}", field="audio") from exc
        vector = tensors[SPEAKER_TENSOR]
        if not np.isfinite(vector).all() or not vector.any():
            raise InvalidInput(f"the {encoder.name} model produced no usable vector for this audio", field="audio")
        return vector, (time.perf_counter() - started) * 1000

    # -- observability --------------------------------------------------------------------
    def snapshot(self) -> EmbedderSnapshot:
        """Counters and gauges from memory alone: cheap enough for every Prometheus scrape."""
        leases = self.cache.leases
        return self.stats.snapshot(
            peer_fills=leases.counters.peer_fills if leases is not None else 0,
            lease_takeovers=leases.counters.takeovers if leases is not None else 0,
            worker=self.worker,
            **write_back_figures(self.cache.write_back),
            **self.indexes.figures(),
            coalesced=self.cache.counters.coalesced,
            corrupt_entries=self.cache.counters.corrupt_entries + self.stats.wrong_type_keys,
            redis_available=self.cache.shared_available,
            local_entries=len(self.cache.local),
            local_bytes=self.cache.local.nbytes,
            local_capacity_bytes=self.cache.local.capacity_bytes,
            reencode_aliases=self.pcm_index.counters.aliases_created,
            alias_hits=self.cache.counters.alias_hits,
            warm_start_entries=self.warmed.entries,
            warm_start_bytes=self.warmed.bytes,
            warm_start_ms=self.warmed.ms,
            runtimes={name: choice for name, e in self.encoders.items() if (choice := getattr(e, "runtime", None))},
            speaker_similarity=self.similarity.figures(),
        )

    async def full_snapshot(self) -> EmbedderSnapshot:
        """`snapshot()` plus the shared store's key count (one round trip), summed over every worker
        on this Redis when there is a fleet (fleet.py), for GetStats."""
        own = replace(self.snapshot(), redis_entries=await self.cache.count_shared_entries())
        return own if self.fleet is None else await self.fleet.totals(own)

    async def warm_start(self) -> WarmStart:
        """Fill L1 with the hottest entries in the shared store (cache/hotness.py); the server
        calls it before it reports SERVING. Bounded by `--warm-start-s`; never fails."""
        self.warmed = await warm(
            self.cache,
            self.hotness.key,
            self.encoders.values(),
            max_entries=self.settings.warm_start_entries,
            budget_s=self.settings.warm_start_s,
        )
        return self.warmed

    async def close(self) -> None:
        await self.hotness.close()
        await self.indexes.close()
        await self.cache.close()

    # -- internals ------------------------------------------------------------------------
    def _encoder(self, name: str) -> Encoder:
        encoder = self.encoders.get(name or self.default_encoder)
        if encoder is None:
            raise InvalidInput(
                f"unknown encoder {name!r}; available: {', '.join(sorted(self.encoders))}", field="encoder"
            )
        return encoder

    async def _embed(
        self,
        audio: bytes | memoryview | None,
        voice_id: str | None,
        encoder: Encoder,
        options: CacheOptions,
        started: float,
        deadline: float | None,
        tenant: str,
    ) -> EmbedResult:
        voice: Voice | None = None
        voices = self.voices.of(tenant)
        if voice_id is not None:
            # The recent local copy first: the common hit by voice_id then awaits nothing here.
            voice = voices.recent(voice_id) or await self._resolve_voice(voice_id, voices)
            if not voice.content_digest:  # registered before content keys used BLAKE3: once per voice
                voice.content_digest = keys.content_digest(await voices.audio(voice))
                await voices.update(voice)
            digest = voice.content_digest
            pin = True  # a registered voice's conditioning never expires
        elif audio is not None:
            audio_mod.check_size(audio, self.limits)
            digest = keys.content_digest(audio)
            pin = options.pin
        else:
            raise InvalidInput("set exactly one of audio or voice_id", fields=("audio", "voice_id"))
        # Content is cached per tenant unless sharing is switched on: a hit on bytes another tenant
        # uploaded would tell this caller that they were uploaded.
        scope = keys.scope(self.settings.cache_prefix, "" if self.settings.share_content_cache else tenant)
        key = keys.conditioning(scope, encoder.name, encoder.weights_digest, digest)
        ttl_s = options.ttl_s or self.settings.default_ttl_s
        audio_bytes = len(audio) if audio is not None else 0
        looked_up, looked_up_ns = time.perf_counter(), time.time_ns()
        if not options.bypass:
            # A hit is answered here, without building a fill, a policy or a span to nest under:
            # the common L1 hit synchronously, a store hit (or a pin to add) with one await.
            found = self.cache.local_hit(key.redis_key, ttl_s, pin=pin)
            tier = CacheTier.LOCAL
            if found is None and (hit := await self.cache.hit(key, ttl_s, encoder.tensors, pin=pin)) is not None:
                found, tier = hit
            if found is not None:
                if voice is not None and voice.pinned.get(found.encoder) != found.cache_key:
                    await self._record_pin(voice, found, voices)
                now = time.perf_counter()
                if tracing.enabled():  # recorded once over: no child span needs it as the current one
                    attributes = _hit_attributes(encoder.name, audio_bytes, tier)
                    tracing.record("voxcache.cache.lookup", looked_up_ns, attributes)
                return EmbedResult(found, tier, Timings((now - started) * 1000, (now - looked_up) * 1000))
        lookup = {tracing.ENCODER: encoder.name, tracing.AUDIO_BYTES: audio_bytes}
        with tracing.span("voxcache.cache.lookup", lookup, start_ns=looked_up_ns):  # decode and extract nest here
            cache_ms = (time.perf_counter() - looked_up) * 1000
            result = await self._fill(
                key, encoder, options, ttl_s, pin, voice, voices, audio, started, cache_ms, deadline
            )
            tracing.annotate({tracing.TIER: result.tier.value, tracing.CACHE_HIT: result.cache_hit})
        return result

    async def _fill(
        self,
        key: keys.ConditioningKey,
        encoder: Encoder,
        options: CacheOptions,
        ttl_s: int,
        pin: bool,
        voice: Voice | None,
        voices: VoiceRegistry,
        audio: bytes | memoryview | None,
        started: float,
        cache_ms: float,
        deadline: float | None,
    ) -> EmbedResult:
        """A miss (or a bypass): one extraction per key, admitted, stored; or the entry another
        caller or process extracted meanwhile."""
        load_audio = self._audio_loader(audio, voice, voices)
        policy = CachePolicy(ttl_s=ttl_s, pin=pin, bypass=options.bypass)

        async def compute() -> _Extraction:
            return await self._admission.run(lambda: self._extract(key, encoder, load_audio, policy), deadline)

        fetched = await self.cache.fill(key, compute, policy, encoder.tensors, cache_ms, deadline)
        if voice is not None:
            await self._record_pin(voice, fetched.conditioning, voices)
        total_ms = (time.perf_counter() - started) * 1000
        if fetched.filled is None:
            return EmbedResult(fetched.conditioning, fetched.tier, Timings(total_ms, fetched.cache_ms))
        filled = fetched.filled
        timings = Timings(total_ms, fetched.cache_ms, filled.decode_ms, filled.extract_ms)
        # Found through the PCM index: a store hit under other bytes, not a model run.
        return EmbedResult(fetched.conditioning, CacheTier.REDIS if filled.stored else fetched.tier, timings)

    @staticmethod
    def _audio_loader(
        audio: bytes | memoryview | None, voice: Voice | None, voices: VoiceRegistry
    ) -> Callable[[], Awaitable[bytes]]:
        """Where a miss gets its clip: the upload itself (copied out of the request's bytes, once
        per miss), or the registered voice's stored audio."""
        if voice is not None:
            registered = voice
            return lambda: voices.audio(registered)
        uploaded = bytes(audio) if audio is not None else b""

        async def load_audio() -> bytes:
            return uploaded

        return load_audio

    async def _extract(
        self,
        key: keys.ConditioningKey,
        encoder: Encoder,
        load_audio: Callable[[], Awaitable[bytes]],
        policy: CachePolicy,
    ) -> _Extraction:
        data = await load_audio()
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        with tracing.span("voxcache.decode", {tracing.AUDIO_BYTES: len(data)}):
            source, pcm_key = await loop.run_in_executor(None, lambda: self._read(data, key, policy))
            if pcm_key is not None:  # the same samples in other bytes may be cached already
                found = await self.pcm_index.find(key, pcm_key, policy, encoder.tensors)
                if found is not None:
                    return _Extraction(found, (time.perf_counter() - t0) * 1000, 0.0, stored=True)
            decoded = await loop.run_in_executor(None, lambda: audio_mod.at_rate(source, encoder.sample_rate))
            tracing.annotate({tracing.SAMPLES: len(decoded.samples)})
        t1 = time.perf_counter()
        with tracing.span("voxcache.extract", {tracing.ENCODER: encoder.name, tracing.SAMPLES: len(decoded.samples)}):
            try:
                tensors = await self._batchers[encoder.name].encode(decoded.samples)  # annotates the batch size
            except (RuntimeError, ValueError, FloatingPointError) as exc:
                # The clip passed every check yet the model cannot use it: that clip's fault, not the server's.
                log.warning("encoder %s failed on a clip (%s)", encoder.name, exc, exc_info=True)
                raise InvalidInput(f"the {encoder.name} model could not use this clip: {exc}", field="audio") from exc
        t2 = time.perf_counter()
        self.stats.record_extraction(t2 - t1)
        for name, array in tensors.items():
            if not np.isfinite(array).all():
                raise InvalidInput(
                    f"the {encoder.name} model produced non-finite values ({name}) for this clip", field="audio"
                )
            array.setflags(write=False)
        # The encoder's own declaration: stored otherwise, every hit would be rejected and recomputed.
        # (Values were checked just above, as the clip's fault rather than the encoder's.)
        check_tensors(encoder.tensors, tensors, finite=False)
        conditioning = Conditioning(encoder.name, encoder.weights_digest, key.redis_key, tensors)
        if pcm_key is not None:
            await self.pcm_index.remember(key, pcm_key, policy)
        return _Extraction(conditioning, (t1 - t0) * 1000, (t2 - t1) * 1000)

    def _read(
        self, data: bytes, key: keys.ConditioningKey, policy: CachePolicy
    ) -> tuple[audio_mod.DecodedAudio, str | None]:
        """The clip at its own rate, and its PCM index key when re-encodings are looked for."""
        source = audio_mod.read(data, self.limits)
        if policy.bypass or not self.pcm_index.enabled:
            return source, None
        return source, keys.pcm(key, keys.pcm_digest(source.sample_rate, source.samples))

    @staticmethod
    def _searched_input(query: SearchQuery, encoder: Encoder, name: str) -> np.ndarray:
        """The searched tensor of conditioning sent by the caller, which must be `encoder`'s."""
        if query.conditioning_encoder and query.conditioning_encoder != encoder.name:
            raise InvalidInput(
                f"conditioning is from encoder {query.conditioning_encoder!r} but the search compares "
                f"{encoder.name!r} vectors; set encoder to match",
                field="conditioning.encoder",
            )
        assert query.conditioning is not None
        tensor = query.conditioning.get(name)
        if tensor is None:
            raise InvalidInput(
                f"conditioning has no {name!r} tensor, the one {encoder.name} voices are searched by",
                field="conditioning.tensors",
            )
        return tensor

    def _searched_vectors(self, conditioning: Conditioning | None) -> dict[Encoder, np.ndarray | None]:
        """Every searchable encoder's vector of a voice: the registering encoder's from
        `conditioning`, None for the others (and for all of them when the voice is deleted)."""
        vectors: dict[Encoder, np.ndarray | None] = {}
        for encoder in self.encoders.values():
            try:
                name, _ = searched_tensor(encoder)
            except InvalidInput:
                continue  # nothing of this encoder is searched
            same = conditioning is not None and conditioning.encoder == encoder.name
            vectors[encoder] = conditioning.tensors.get(name) if same and conditioning is not None else None
        return vectors

    async def _vector_of(self, tenant: str, voice: Voice, encoder: Encoder) -> np.ndarray | None:
        """A registered voice's searched vector from its (pinned, so normally cached) conditioning."""
        try:
            name, _ = searched_tensor(encoder)
            result = await self.embed(voice_id=voice.voice_id, encoder=encoder.name, tenant=tenant)
        except ServiceError as exc:
            log.warning("voice %r has no %s vector to search by: %s", voice.voice_id, encoder.name, exc.message)
            return None
        return result.conditioning.tensors.get(name)

    async def _resolve_voice(self, voice_id: str, voices: VoiceRegistry) -> Voice:
        validate_voice_id(voice_id)
        voice = await voices.resolve(voice_id)
        if voice is None:
            raise NotFound(
                f"voice {voice_id!r} is not registered; register it first (voxcache voices register)",
                field="voice_id",
                resource=voice_resource(voice_id),
            )
        return voice

    async def _record_pin(self, voice: Voice, conditioning: Conditioning, voices: VoiceRegistry) -> None:
        """A voice records which entry it pins per encoder, whoever computed the entry first."""
        old = voice.pinned.get(conditioning.encoder)
        if old == conditioning.cache_key:
            return
        voice.pinned[conditioning.encoder] = conditioning.cache_key
        await voices.update(voice)
        if old is not None:
            await self.cache.unpin(old)

    async def _release(self, voice: Voice, voices: VoiceRegistry) -> None:
        """Unpin what only this voice held: its conditioning gets the default TTL, its audio goes.

        Only the tenant's own voices are asked: with a shared content cache another tenant's
        voice may still pin the entry, and it then re-derives it from its own copy of the audio.
        """
        try:
            others = await voices.all()
        except ServiceError:
            return  # registry unreachable: keep the pins rather than unpin a voice still in use
        if any(v.audio_sha256 == voice.audio_sha256 for v in others):
            return
        for key in voice.pinned.values():
            await self.cache.unpin(key)
        await voices.drop_audio(voice.audio_sha256)
