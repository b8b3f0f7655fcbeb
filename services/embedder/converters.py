"""Proto <-> domain for the Embedder: the only module that knows both shapes.

The servicer is converter -> one core call -> converter; the core never sees protobuf,
and nothing here makes a decision.
"""

from __future__ import annotations

import weakref
from typing import TypedDict

import numpy as np

from services.common.errors import InvalidInput
from services.common.grpc_errors import STATUS_OF_KIND
from services.embedder import embed_response
from services.embedder.cache.tiered import CacheTier
from services.embedder.conditioning import Conditioning
from services.embedder.core import (
    CacheOptions,
    EmbedResult,
    PreloadItem,
    PreloadSummary,
    SearchQuery,
    SearchResult,
    SpeakerScore,
)
from services.embedder.embed_request import EmbedCall
from services.embedder.metrics import EmbedderSnapshot
from services.embedder.voices import Voice
from voxcache import tensors
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import tensor_pb2

TIER_TO_PROTO: dict[CacheTier, pb.CacheTier.ValueType] = {
    CacheTier.LOCAL: pb.CACHE_TIER_LOCAL,
    CacheTier.REDIS: pb.CACHE_TIER_REDIS,
    CacheTier.COMPUTED: pb.CACHE_TIER_COMPUTED,
}


def fill_conditioning(wire: tensor_pb2.Conditioning, conditioning: Conditioning) -> None:
    """Write `conditioning` into a wire message in place (a field of a response, or a new message)."""
    wire.encoder, wire.weights_digest, wire.cache_key = (
        conditioning.encoder,
        conditioning.weights_digest,
        conditioning.cache_key,
    )
    tensors.map_to_proto(conditioning.tensors, wire.tensors)


def voice_to_proto(voice: Voice) -> pb.Voice:
    return pb.Voice(
        voice_id=voice.voice_id,
        audio_sha256=voice.audio_sha256,
        encoders=sorted(voice.pinned),
        duration_s=voice.duration_s,
        created_unix_ms=voice.created_unix_ms,
    )


#: What a request that sets no CacheOptions asks for: one shared object, not one per request.
_DEFAULT_OPTIONS = CacheOptions()


def options_from_proto(options: pb.CacheOptions) -> CacheOptions:
    return CacheOptions(ttl_s=options.ttl_seconds, bypass=options.bypass, pin=options.pin)


def _options_of(cache: pb.CacheOptions | None) -> CacheOptions:
    """A request's cache options (None: it set none, the common case, and then nothing is built)."""
    return _DEFAULT_OPTIONS if cache is None else options_from_proto(cache)


class EmbedArgs(TypedDict):
    """Keyword arguments of `Embedder.embed`."""

    audio: bytes | memoryview | None
    voice_id: str | None
    encoder: str
    options: CacheOptions


def embed_from_proto(call: EmbedCall) -> EmbedArgs:
    """The request as Embed's deserializer read it (embed_request.py)."""
    return {
        "audio": call.audio,
        "voice_id": call.voice_id,
        "encoder": call.encoder,
        "options": _options_of(call.cache),
    }


#: Each entry's conditioning as the first field of an EmbedResponse, serialized once per entry object.
_WIRE: weakref.WeakKeyDictionary[Conditioning, bytes] = weakref.WeakKeyDictionary()


def embed_response_bytes(result: EmbedResult) -> bytes:
    """The serialized EmbedResponse of `result`, without copying the tensors into a message per request.

    Protobuf reads concatenated messages as one (later fields merge in), so the entry's
    `conditioning` field is serialized once per entry and this request's own fields (tier,
    timings) are appended, packed by embed_response.py: a hit builds no message at all.
    """
    head = _WIRE.get(result.conditioning)
    if head is None:
        response = pb.EmbedResponse()
        fill_conditioning(response.conditioning, result.conditioning)  # in place: no message copied in
        head = _WIRE[result.conditioning] = response.SerializeToString()
    t = result.timings
    return head + embed_response.own_fields(
        result.cache_hit, TIER_TO_PROTO[result.tier], (t.total_ms, t.cache_ms, t.decode_ms, t.extract_ms)
    )


def register_to_proto(voice: Voice, result: EmbedResult) -> pb.RegisterVoiceResponse:
    response = pb.RegisterVoiceResponse(voice=voice_to_proto(voice), cache_hit=result.cache_hit)
    fill_conditioning(response.conditioning, result.conditioning)
    return response


def search_from_proto(request: pb.SearchVoicesRequest) -> SearchQuery:
    """The request's query; a Tensor whose dtype, shape and bytes disagree is the caller's fault."""
    which = request.WhichOneof("query")
    try:
        if which == "vector":
            return SearchQuery(vector=tensors.from_proto(request.vector, name="vector"))
        if which == "conditioning":
            conditioning = request.conditioning
            return SearchQuery(
                conditioning=tensors.map_from_proto(conditioning.tensors), conditioning_encoder=conditioning.encoder
            )
    except tensors.TensorFormatError as exc:
        where = "vector" if which == "vector" else "conditioning.tensors"
        raise InvalidInput(str(exc), field=where) from exc
    if which == "audio":
        return SearchQuery(audio=request.audio)
    if which == "voice_id":
        return SearchQuery(voice_id=request.voice_id)
    return SearchQuery()


def search_to_proto(result: SearchResult) -> pb.SearchVoicesResponse:
    return pb.SearchVoicesResponse(
        hits=[pb.VoiceHit(voice=voice_to_proto(hit.voice), cosine=hit.cosine) for hit in result.hits],
        encoder=result.encoder,
        searched=result.searched,
    )


def preload_item_from_proto(request: pb.PreloadRequest) -> PreloadItem:
    cache = request.cache if request.HasField("cache") else None
    return PreloadItem(request.audio, request.label, request.encoder, _options_of(cache))


def preload_to_proto(summary: PreloadSummary) -> pb.PreloadResponse:
    return pb.PreloadResponse(
        received=summary.received,
        computed=summary.computed,
        cached=summary.cached,
        failed=len(summary.failures),
        failures=[
            pb.PreloadFailure(index=f.index, label=f.label, code=STATUS_OF_KIND[f.kind].name, message=f.message)
            for f in summary.failures
        ],
        total_ms=summary.total_ms,
    )


class ScoreArgs(TypedDict):
    """Keyword arguments of `Embedder.score_speaker`."""

    audio: bytes
    reference_audio: bytes | None
    voice_id: str | None
    reference: dict[str, np.ndarray] | None
    reference_encoder: str
    backend: str


def score_from_proto(request: pb.ScoreSpeakerRequest) -> ScoreArgs:
    which = request.WhichOneof("reference")
    reference = None
    if which == "reference_conditioning":
        try:
            reference = tensors.map_from_proto(request.reference_conditioning.tensors)
        except tensors.TensorFormatError as exc:
            raise InvalidInput(f"malformed conditioning tensor: {exc}", field="reference_conditioning.tensors") from exc
    return {
        "audio": request.audio,
        "reference_audio": request.reference_audio if which == "reference_audio" else None,
        "voice_id": request.voice_id if which == "voice_id" else None,
        "reference": reference,
        "reference_encoder": request.reference_conditioning.encoder if which == "reference_conditioning" else "",
        "backend": request.backend,
    }


def score_to_proto(score: SpeakerScore) -> pb.ScoreSpeakerResponse:
    return pb.ScoreSpeakerResponse(
        speaker_similarity=score.similarity,
        reference_cache_hit=score.reference_cache_hit,
        total_ms=score.total_ms,
        extract_ms=score.extract_ms,
    )


def stats_to_proto(s: EmbedderSnapshot) -> pb.GetStatsResponse:
    return pb.GetStatsResponse(
        requests=s.requests,
        hits=s.hits,
        misses=s.misses,
        hit_ratio=s.hit_ratio,
        local_hits=s.local_hits,
        redis_hits=s.redis_hits,
        extractions=s.extractions,
        coalesced=s.coalesced,
        errors=s.errors,
        redis_errors=s.redis_errors,
        corrupt_entries=s.corrupt_entries,
        redis_available=s.redis_available,
        local_entries=s.local_entries,
        local_bytes=s.local_bytes,
        local_capacity_bytes=s.local_capacity_bytes,
        redis_entries=s.redis_entries,
        extraction_latency=pb.LatencyPercentiles(
            p50_ms=s.extraction_p50_ms,
            p95_ms=s.extraction_p95_ms,
            p99_ms=s.extraction_p99_ms,
            samples=s.extraction_samples,
        ),
        write_back_pending=s.write_back_pending,
        write_back_bytes=s.write_back_bytes,
        write_back_written=s.write_back_written,
        write_back_dropped=s.write_back_dropped,
        dropped_extractions=s.dropped_extractions,
        encoder_runtimes={
            encoder: pb.EncoderRuntime(
                runtime=choice.name, forced=choice.forced, warmup_ms=choice.timings_ms, skipped=choice.skipped
            )
            for encoder, choice in s.runtimes.items()
        },
        forward_passes=s.forward_passes,
        batched_clips=s.batched_clips,
        reencode_aliases=s.reencode_aliases,
        alias_hits=s.alias_hits,
        warm_start_entries=s.warm_start_entries,
        warm_start_bytes=s.warm_start_bytes,
        warm_start_ms=s.warm_start_ms,
        indexed_voices=s.indexed_voices,
        index_bytes=s.index_bytes,
        index_loads=s.index_loads,
        worker=s.worker,
        workers=s.workers,
        peer_fills=s.peer_fills,
        lease_takeovers=s.lease_takeovers,
        shed_extractions=s.shed,
        speaker_similarity={
            label: pb.SpeakerSimilarityStats(p50=f.p50, samples=f.samples, scored=f.scored, failed=f.failed)
            for label, f in s.speaker_similarity.items()
        },
    )
