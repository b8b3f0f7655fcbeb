"""voxcache.v1.Synthesizer over gRPC: converter -> one core call -> converter, per RPC."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.common.grpc_server import deadline_of, rpc_errors, rpc_stream_errors
from services.synthesizer import converters
from services.synthesizer.core import Synthesizer
from voxcache.v1 import synthesizer_pb2 as pb
from voxcache.v1 import synthesizer_pb2_grpc


class SynthesizerServicer(synthesizer_pb2_grpc.SynthesizerServicer):
    def __init__(self, core: Synthesizer) -> None:
        self.core = core

    @rpc_errors
    async def Synthesize(
        self, request: pb.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> pb.SynthesizeResponse:
        result = await self.core.synthesize(
            converters.request_from_proto(request), converters.format_from_proto(request), deadline_of(context)
        )
        return converters.synthesis_to_proto(result)

    @rpc_stream_errors
    async def SynthesizeStream(
        self, request: pb.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SynthesizeStreamResponse]:
        events = self.core.stream(
            converters.request_from_proto(request), converters.format_from_proto(request), deadline_of(context)
        )
        async for event in events:
            yield converters.stream_event_to_proto(event)
