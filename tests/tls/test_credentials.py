"""Bearer tokens reach the server as `authorization: Bearer <token>` on every kind of call,
from every client (SDK sync and async, CLI, the Synthesizer's Embedder channel), over TLS
and plaintext.

The spy is a real gRPC server whose generic handler records each call's metadata and
then declines the call (UNIMPLEMENTED): the observation happens on the wire, before any
service code, which is all a transport test needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
import pytest_asyncio

from services.common.errors import ServiceError
from services.synthesizer.embedder_client import EmbedderGateway
from tests.tls.conftest import Certs
from voxcache import (
    TLS,
    AsyncEmbedderClient,
    AsyncSynthesizerClient,
    EmbedderClient,
    SynthesizerClient,
    VoxcacheError,
    cli,
)

TOKEN = "tok-3f9a.secret_value"


@dataclass
class Spy(grpc.GenericRpcHandler):
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def service(self, details: grpc.HandlerCallDetails) -> None:
        self.calls.append((details.method, dict(details.invocation_metadata)))
        return None  # UNIMPLEMENTED: the call was seen, that is all

    def authorizations(self) -> list[str | None]:
        return [metadata.get("authorization") for _, metadata in self.calls]


@dataclass
class SpyServer:
    spy: Spy
    address: str


async def start_spy(credentials: grpc.ServerCredentials | None) -> tuple[grpc.aio.Server, SpyServer]:
    spy = Spy()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([spy])
    port = (
        server.add_secure_port("127.0.0.1:0", credentials) if credentials else server.add_insecure_port("127.0.0.1:0")
    )
    await server.start()
    return server, SpyServer(spy, f"127.0.0.1:{port}")


@pytest_asyncio.fixture(params=["plaintext", "mtls"])
async def spy_server(request: pytest.FixtureRequest, certs: Certs) -> AsyncIterator[tuple[SpyServer, TLS | None]]:
    mtls = request.param == "mtls"
    server, spy = await start_spy(certs.server(mutual=True).credentials() if mtls else None)
    yield spy, certs.client(with_cert=True) if mtls else None
    await server.stop(None)


def declined(call: object) -> None:
    with pytest.raises(VoxcacheError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code == grpc.StatusCode.UNIMPLEMENTED


async def test_sdk_clients_send_the_token_on_unary_streaming_and_client_streaming_calls(
    spy_server: tuple[SpyServer, TLS | None],
) -> None:
    spy, tls = spy_server

    def blocking() -> None:
        with EmbedderClient(spy.address, tls=tls, token=TOKEN, timeout=5) as embedder:
            declined(embedder.stats)
            declined(lambda: embedder.preload([b"RIFF"]))  # client streaming
        with SynthesizerClient(spy.address, tls=tls, token=TOKEN, timeout=5) as synth:
            declined(lambda: list(synth.stream("Hi.", voice_id="v")))  # server streaming

    await asyncio.to_thread(blocking)
    async with AsyncEmbedderClient(spy.address, tls=tls, token=TOKEN, timeout=5) as embedder:
        with pytest.raises(VoxcacheError):
            await embedder.embed(voice_id="v")
    async with AsyncSynthesizerClient(spy.address, tls=tls, token=TOKEN, timeout=5) as synth:
        with pytest.raises(VoxcacheError):
            async for _ in synth.stream("Hi.", voice_id="v"):
                pass
    methods = [method for method, _ in spy.spy.calls]
    assert methods == [
        "/voxcache.v1.Embedder/GetStats",
        "/voxcache.v1.Embedder/Preload",
        "/voxcache.v1.Synthesizer/SynthesizeStream",
        "/voxcache.v1.Embedder/Embed",
        "/voxcache.v1.Synthesizer/SynthesizeStream",
    ]
    assert spy.spy.authorizations() == [f"Bearer {TOKEN}"] * 5


async def test_no_token_sends_no_authorization(spy_server: tuple[SpyServer, TLS | None]) -> None:
    spy, tls = spy_server
    async with AsyncEmbedderClient(spy.address, tls=tls, timeout=5) as embedder:
        with pytest.raises(VoxcacheError):
            await embedder.stats()
    assert spy.spy.authorizations() == [None]


def test_a_token_grpc_cannot_carry_is_refused_without_echoing_it() -> None:
    for token in ("line\nbreak-hunter2", " padded-hunter2", "naïve-hunter2"):
        with pytest.raises(ValueError) as caught:
            EmbedderClient("127.0.0.1:1", token=token)
        assert "hunter2" not in str(caught.value)


async def test_the_synthesizer_gateway_sends_its_token_and_the_per_call_metadata(
    spy_server: tuple[SpyServer, TLS | None],
) -> None:
    spy, tls = spy_server
    gateway = EmbedderGateway(spy.address, margin_s=0.05, default_timeout_s=5, tls=tls, token=TOKEN)
    try:
        with pytest.raises(ServiceError):
            await gateway.embed(voice_id="v", encoder="ecapa", metadata=[("voxcache-tenant", "acme")])
    finally:
        await gateway.close()
    (_, metadata), *_ = spy.spy.calls
    assert metadata["authorization"] == f"Bearer {TOKEN}"
    assert metadata["voxcache-tenant"] == "acme"


async def test_the_cli_sends_the_token_from_flag_or_environment_and_never_prints_it(
    spy_server: tuple[SpyServer, TLS | None],
    certs: Certs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spy, tls = spy_server
    tls_flags = [] if tls is None else ["--tls-ca", certs.path("ca.pem")]
    tls_flags += [] if tls is None else ["--tls-cert", certs.path("client.pem"), "--tls-key", certs.path("client.key")]
    common = ["--embedder", spy.address, "-q", *tls_flags]
    assert await asyncio.to_thread(cli.main, ["stats", *common, "--token", TOKEN]) == 1
    monkeypatch.setenv("VOXCACHE_TOKEN", "from-the-environment")
    assert await asyncio.to_thread(cli.main, ["stats", *common]) == 1
    assert spy.spy.authorizations() == [f"Bearer {TOKEN}", "Bearer from-the-environment"]
    with pytest.raises(SystemExit):
        cli.main(["stats", "--help"])
    printed = capsys.readouterr()
    assert "is not the Embedder" in printed.err  # the spy declines: UNIMPLEMENTED
    assert "--token" in printed.out  # the help was printed, without the token's value
    assert TOKEN not in printed.out + printed.err and "from-the-environment" not in printed.out + printed.err


def test_voxcache_up_does_not_pass_tls_or_token_variables_to_its_services() -> None:
    """Its stack's security is its own flags' (plaintext, or --tls-dir): a deployment's or the CLI's
    VOXCACHE_TLS_* must not turn one service to TLS behind the launcher's back."""
    from services.launcher import launcher_drops

    for name in ("VOXCACHE_TLS_CERT", "VOXCACHE_EMBEDDER_TLS_KEY", "VOXCACHE_TLS_CA", "VOXCACHE_TOKEN",
                 "VOXCACHE_SYNTHESIZER_EMBEDDER_TOKEN", "VOXCACHE_REDIS_PASSWORD"):  # fmt: skip
        assert launcher_drops(name), name
    for name in ("VOXCACHE_LOG_LEVEL", "VOXCACHE_MODEL_DIR", "PATH"):
        assert not launcher_drops(name), name
