"""How services reach the grpc.aio server: as generic handlers only (GenericRegistration).

A registered method costs a grpc.aio server an extra pending task that its serving loop waits on
after every call (services/common/grpc_server.py), so none may reach it; every method must still
answer, found by name through the generic handlers.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.grpc_server import GrpcServer, ServerLimits
from services.embedder.servicer import EmbedderServicer, add_to_server


async def test_no_method_is_registered_and_every_one_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[str] = []
    real = grpc.aio._server.Server.add_registered_method_handlers

    def spy(self: Any, service: str, handlers: dict[str, Any]) -> None:
        registered.append(service)
        real(self, service, handlers)

    monkeypatch.setattr(grpc.aio._server.Server, "add_registered_method_handlers", spy)
    server = GrpcServer(
        "127.0.0.1:0",
        [("voxcache.v1.Embedder", lambda s: add_to_server(EmbedderServicer(core=None), s))],  # type: ignore[arg-type]
        ServerLimits(max_receive_bytes=1024 * 1024, grace_s=0.5),
    )
    assert registered == []
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="voxcache.v1.Embedder"), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            # Embed is found by name; with no core behind it the servicer's error mapping answers.
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await channel.unary_unary("/voxcache.v1.Embedder/Embed")(b"", timeout=5)
            assert failed.value.code() == grpc.StatusCode.INTERNAL
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await channel.unary_unary("/voxcache.v1.Embedder/Nope")(b"", timeout=5)
            assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop()
