"""voxcache.v1.Embedder over gRPC: converter -> one core call -> converter, per RPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from services.common.auth_interceptor import current_principal
from services.common.grpc_server import ServiceRegistrar, deadline_of, rpc_errors
from services.embedder import converters, embed_request
from services.embedder.core import Embedder, PreloadItem
from services.embedder.embed_request import EmbedCall
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc


def _tenant() -> str:
    """The caller's tenant, set by the AuthInterceptor before this call's handler ran."""
    return current_principal.get().tenant


class EmbedderServicer(embedder_pb2_grpc.EmbedderServicer):
    def __init__(self, core: Embedder) -> None:
        self.core = core

    @rpc_errors
    async def Embed(self, request: EmbedCall, context: grpc.aio.ServicerContext) -> bytes:
        """Takes the request as embed_request.read parses it and answers a serialized
        EmbedResponse (see `add_to_server`): the hot path copies neither the clip nor tensors."""
        result = await self.core.embed(
            **converters.embed_from_proto(request), deadline=deadline_of(context), tenant=_tenant()
        )
        return converters.embed_response_bytes(result)

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
    async def SearchVoices(
        self, request: pb.SearchVoicesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchVoicesResponse:
        result = await self.core.search_voices(
            converters.search_from_proto(request),
            k=request.k,
            encoder=request.encoder,
            tenant=_tenant(),
            deadline=deadline_of(context),
        )
        return converters.search_to_proto(result)

    @rpc_errors
    async def ScoreSpeaker(
        self, request: pb.ScoreSpeakerRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScoreSpeakerResponse:
        score = await self.core.score_speaker(
            **converters.score_from_proto(request), deadline=deadline_of(context), tenant=_tenant()
        )
        return converters.score_to_proto(score)

    @rpc_errors
    async def GetStats(self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext) -> pb.GetStatsResponse:
        return converters.stats_to_proto(await self.core.full_snapshot())


def add_to_server(servicer: EmbedderServicer, server: ServiceRegistrar) -> None:
    """The generated registration, except for how Embed's request and answer are (de)serialized.

    The generated code parses every request with its message's FromString and serializes every
    response with SerializeToString. Embed's request is read by embed_request.read instead, which
    leaves the clip where it arrived, and Embed returns an already serialized EmbedResponse
    (converters.embed_response_bytes), so it has no serializer: gRPC sends those bytes. Every other
    method is registered unchanged.
    """
    registrar = _EmbedOnTheWire(server)
    embedder_pb2_grpc.add_EmbedderServicer_to_server(servicer, registrar)
    if not registrar.registered:
        raise RuntimeError("the generated Embedder registration no longer calls add_registered_method_handlers")


class _EmbedOnTheWire:
    """Stands in for the server while the generated code registers its handlers.

    The generated code builds one table of method handlers and hands it to the server twice
    (generic and registered); the table is taken from the second call, Embed's deserializer and
    serializer replaced, and both registrations made with it.
    """

    def __init__(self, server: ServiceRegistrar) -> None:
        self._server = server
        self.registered = False

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """Dropped: rebuilt from the same table in `add_registered_method_handlers`."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        # No serializer: gRPC sends the bytes a handler returns as they are.
        embed = handlers["Embed"]._replace(request_deserializer=embed_request.read, response_serializer=None)
        table = {**handlers, "Embed": embed}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, table),))
        self._server.add_registered_method_handlers(service, table)
        self.registered = True
