"""voxcache.v1.Embedder over gRPC: proto <-> domain, one core call per RPC, nothing else."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator

import grpc

from services.common.grpc_server import rpc_errors
from services.embedder.conditioning import Conditioning
from services.embedder.core import SOURCE_COMPUTED, SOURCE_LOCAL, SOURCE_REDIS, CachePolicy, Embedder, PreloadItem
from services.embedder.voices import VoiceRecord
from voxcache import tensors
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc, tensor_pb2

_SOURCES = {
    SOURCE_LOCAL: pb.CACHE_SOURCE_LOCAL,
    SOURCE_REDIS: pb.CACHE_SOURCE_REDIS,
    SOURCE_COMPUTED: pb.CACHE_SOURCE_COMPUTED,
}


def conditioning_to_proto(conditioning: Conditioning) -> tensor_pb2.Conditioning:
    message = tensor_pb2.Conditioning(
        encoder=conditioning.encoder, weights_digest=conditioning.weights_digest, cache_key=conditioning.cache_key
    )
    tensors.map_to_proto(conditioning.tensors, message.tensors)
    return message


def voice_to_proto(voice: VoiceRecord) -> pb.Voice:
    return pb.Voice(
        voice_id=voice.voice_id,
        audio_sha256=voice.audio_sha256,
        encoders=sorted(voice.pinned),
        duration_s=voice.duration_s,
        created_unix_ms=voice.created_unix_ms,
    )


def policy_from_proto(options: pb.CacheOptions) -> CachePolicy:
    return CachePolicy(ttl_s=options.ttl_seconds, bypass=options.bypass, pin=options.pin)


class EmbedderServicer(embedder_pb2_grpc.EmbedderServicer):
    #: Conditioning messages built recently, by cache key. Entries are content-addressed and
    #: immutable, so a hot voice's message is built once instead of on every hit.
    PROTO_MEMO_SIZE = 1024

    def __init__(self, core: Embedder) -> None:
        self.core = core
        self._memo: OrderedDict[str, tensor_pb2.Conditioning] = OrderedDict()

    def _conditioning(self, conditioning: Conditioning) -> tensor_pb2.Conditioning:
        message = self._memo.get(conditioning.cache_key)
        if message is None:
            message = conditioning_to_proto(conditioning)
            self._memo[conditioning.cache_key] = message
            if len(self._memo) > self.PROTO_MEMO_SIZE:
                self._memo.popitem(last=False)
        return message

    @rpc_errors
    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        source = request.WhichOneof("source")
        result = await self.core.embed(
            audio=request.audio if source == "audio" else None,
            voice_id=request.voice_id if source == "voice_id" else None,
            encoder=request.encoder,
            policy=policy_from_proto(request.cache),
        )
        t = result.timings
        return pb.EmbedResponse(
            conditioning=self._conditioning(result.conditioning),
            cache_hit=result.cache_hit,
            source=_SOURCES[result.source],
            timings=pb.Timings(
                total_ms=t.total_ms, cache_ms=t.cache_ms, decode_ms=t.decode_ms, extract_ms=t.extract_ms
            ),
        )

    @rpc_errors
    async def RegisterVoice(
        self, request: pb.RegisterVoiceRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterVoiceResponse:
        voice, result = await self.core.register_voice(
            request.voice_id, request.audio, encoder=request.encoder, overwrite=request.overwrite
        )
        return pb.RegisterVoiceResponse(
            voice=voice_to_proto(voice),
            conditioning=conditioning_to_proto(result.conditioning),
            cache_hit=result.cache_hit,
        )

    @rpc_errors
    async def DeleteVoice(
        self, request: pb.DeleteVoiceRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteVoiceResponse:
        return pb.DeleteVoiceResponse(voice=voice_to_proto(await self.core.delete_voice(request.voice_id)))

    @rpc_errors
    async def ListVoices(
        self, request: pb.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListVoicesResponse:
        return pb.ListVoicesResponse(voices=[voice_to_proto(v) for v in await self.core.list_voices()])

    @rpc_errors
    async def Preload(
        self, request_iterator: AsyncIterator[pb.PreloadRequest], context: grpc.aio.ServicerContext
    ) -> pb.PreloadResponse:
        async def items() -> AsyncIterator[PreloadItem]:
            async for request in request_iterator:
                yield PreloadItem(request.audio, request.label, request.encoder, policy_from_proto(request.cache))

        summary = await self.core.preload(items())
        return pb.PreloadResponse(
            received=summary.received,
            computed=summary.computed,
            cached=summary.cached,
            failed=len(summary.failures),
            failures=[
                pb.PreloadFailure(index=f.index, label=f.label, code=f.code, message=f.message)
                for f in summary.failures
            ],
            total_ms=summary.total_ms,
        )

    @rpc_errors
    async def GetStats(self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext) -> pb.GetStatsResponse:
        core, s = self.core, self.core.stats
        p50, p95, p99, samples = s.extraction_latency.percentiles()
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
            redis_available=core.redis_available,
            local_entries=len(core.local),
            local_bytes=core.local.nbytes,
            local_capacity_bytes=core.local.capacity_bytes,
            redis_entries=await core.redis_entries(),
            extraction_latency=pb.LatencyPercentiles(p50_ms=p50, p95_ms=p95, p99_ms=p99, samples=samples),
        )
