"""voxcache.v1.Embedder over gRPC: converter -> one core call -> converter, per RPC."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.common.auth_interceptor import current_principal
from services.common.grpc_server import deadline_of, rpc_errors
from services.embedder import converters
from services.embedder.core import Embedder, PreloadItem
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc


def _tenant() -> str:
    """The caller's tenant, set by the AuthInterceptor before this call's handler ran."""
    return current_principal.get().tenant


class EmbedderServicer(embedder_pb2_grpc.EmbedderServicer):
    def __init__(self, core: Embedder) -> None:
        self.core = core

    @rpc_errors
    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        result = await self.core.embed(
            **converters.embed_from_proto(request), deadline=deadline_of(context), tenant=_tenant()
        )
        return converters.embed_to_proto(result)

    @rpc_errors
    async def RegisterVoice(
        self, request: pb.RegisterVoiceRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterVoiceResponse:
        voice, result = await self.core.register_voice(
            request.voice_id, request.audio, encoder=request.encoder, overwrite=request.overwrite, tenant=_tenant()
        )
        return converters.register_to_proto(voice, result)

    @rpc_errors
    async def DeleteVoice(
        self, request: pb.DeleteVoiceRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteVoiceResponse:
        voice = await self.core.delete_voice(request.voice_id, tenant=_tenant())
        return pb.DeleteVoiceResponse(voice=converters.voice_to_proto(voice))

    @rpc_errors
    async def ListVoices(
        self, request: pb.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListVoicesResponse:
        voices = await self.core.list_voices(tenant=_tenant())
        return pb.ListVoicesResponse(voices=[converters.voice_to_proto(v) for v in voices])

    @rpc_errors
    async def Preload(
        self, request_iterator: AsyncIterator[pb.PreloadRequest], context: grpc.aio.ServicerContext
    ) -> pb.PreloadResponse:
        async def items() -> AsyncIterator[PreloadItem]:
            async for request in request_iterator:
                yield converters.preload_item_from_proto(request)

        return converters.preload_to_proto(await self.core.preload(items(), tenant=_tenant()))

    @rpc_errors
    async def GetStats(self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext) -> pb.GetStatsResponse:
        return converters.stats_to_proto(await self.core.full_snapshot())
