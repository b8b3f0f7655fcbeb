"""The plaintext health port beside an mTLS port: what Kubernetes' native gRPC probes reach.

A real grpc.aio server with real mTLS credentials (scripts/gen_certs.sh) on loopback; the
probe side is a plain insecure channel, exactly what the kubelet opens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.grpc_server import GrpcServer, ServerLimits
from services.embedder.settings import parse as parse_embedder
from services.synthesizer.settings import parse as parse_synthesizer
from tests.tls.conftest import Certs

SERVICE = "voxcache.v1.Embedder"


async def check(port: int, service: str = SERVICE) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=3
        )
        return reply.status


@pytest_asyncio.fixture
async def mtls_server(certs: Certs) -> AsyncIterator[GrpcServer]:
    server = GrpcServer(
        "127.0.0.1:0",
        [(SERVICE, lambda _server: None)],
        ServerLimits(max_receive_bytes=1024 * 1024, grace_s=1.0),
        certs.server(mutual=True).credentials(),
        health_address="127.0.0.1:0",
    )
    await server.start(serving=False)
    yield server
    await server.stop()


async def test_health_port_answers_plaintext_beside_an_mtls_port(mtls_server: GrpcServer) -> None:
    assert mtls_server.health_server is not None
    health_port = mtls_server.health_server.port
    assert health_port != mtls_server.port
    # Warm-up: the probe sees NOT_SERVING, then SERVING once the service says so.
    assert await check(health_port) == health_pb2.HealthCheckResponse.NOT_SERVING
    await mtls_server.set_serving()
    assert await check(health_port) == health_pb2.HealthCheckResponse.SERVING
    assert await check(health_port, "") == health_pb2.HealthCheckResponse.SERVING
    # The main port still refuses a caller without a client certificate.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(mtls_server.port)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_port_serves_nothing_but_health(mtls_server: GrpcServer) -> None:
    assert mtls_server.health_server is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mtls_server.health_server.port}") as channel:
        reflection = channel.unary_unary("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await reflection(b"", timeout=3)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_health_port_says_not_serving_while_the_main_port_drains(certs: Certs) -> None:
    """SIGTERM: the main port drains an in-flight call; the probe meanwhile reads NOT_SERVING."""
    started = asyncio.Event()

    async def slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started.set()
        await asyncio.sleep(1.0)
        return request

    handler = grpc.method_handlers_generic_handler(SERVICE, {"Slow": grpc.unary_unary_rpc_method_handler(slow)})
    server = GrpcServer(
        "127.0.0.1:0",
        [(SERVICE, lambda s: s.add_generic_rpc_handlers((handler,)))],
        ServerLimits(max_receive_bytes=1024 * 1024, grace_s=3.0),
        certs.server(mutual=True).credentials(),
        health_address="127.0.0.1:0",
    )
    await server.start()
    assert server.health_server is not None
    port = server.health_server.port
    assert await check(port) == health_pb2.HealthCheckResponse.SERVING
    client = certs.client(with_cert=True)
    async with grpc.aio.secure_channel(
        f"localhost:{server.port}", client.credentials(), options=client.options()
    ) as channel:
        in_flight = asyncio.ensure_future(channel.unary_unary(f"/{SERVICE}/Slow")(b"x", timeout=5))
        await started.wait()
        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0.2)
        assert await check(port) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await in_flight == b"x"
    await stopping
    with pytest.raises(grpc.aio.AioRpcError):  # and once drained, the health port is closed too
        await check(port)


def test_no_health_port_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOXCACHE_HEALTH_PORT", raising=False)
    monkeypatch.delenv("VOXCACHE_EMBEDDER_HEALTH_PORT", raising=False)
    assert parse_embedder([]).health_port == 0
    monkeypatch.setenv("VOXCACHE_EMBEDDER_HEALTH_PORT", "8086")
    monkeypatch.setenv("VOXCACHE_SYNTHESIZER_HEALTH_PORT", "8087")
    assert parse_embedder([]).health_port == 8086
    assert parse_synthesizer([]).health_port == 8087
