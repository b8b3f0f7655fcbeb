"""TLS and mTLS on real servers over loopback, with certificates from scripts/gen_certs.sh.

The Embedder runs with the real ECAPA weights and Redis; the Synthesizer with Kokoro.
A refused handshake is UNAVAILABLE to the client (gRPC cannot tell a closed socket
from a refused certificate); start-up refusals name the flag and the file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
import yaml

from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis
from services.common.tls import ServerTLS, TLSError
from services.embedder import server as embedder_server
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.settings import SynthesizerSettings
from tests.tls.conftest import Certs
from voxcache import AsyncEmbedderClient, AsyncSynthesizerClient, VoxcacheError, cli


def embedder_settings(redis_server: LocalRedis, prefix: str, tls: ServerTLS) -> EmbedderSettings:
    return replace(
        EmbedderSettings(),
        port=0,
        metrics_port=0,
        redis_url=redis_server.url,
        cache_prefix=prefix,
        tls_cert=tls.cert,
        tls_key=tls.key,
        tls_client_ca=tls.client_ca,
    )


@pytest_asyncio.fixture
async def tls_embedder(
    encoder: Any, redis_server: LocalRedis, prefix: str, certs: Certs
) -> AsyncIterator[embedder_server.RunningEmbedder]:
    settings = embedder_settings(redis_server, prefix, certs.server(mutual=False))
    running = await embedder_server.start(settings, encoders={"ecapa": encoder})
    yield running
    await running.stop()


@pytest_asyncio.fixture
async def mtls_embedder(
    encoder: Any, redis_server: LocalRedis, prefix: str, certs: Certs
) -> AsyncIterator[embedder_server.RunningEmbedder]:
    settings = embedder_settings(redis_server, prefix, certs.server(mutual=True))
    running = await embedder_server.start(settings, encoders={"ecapa": encoder})
    yield running
    await running.stop()


async def refused(address: str, **client: Any) -> VoxcacheError:
    async with AsyncEmbedderClient(address, timeout=5, **client) as embedder:
        with pytest.raises(VoxcacheError) as caught:
            await embedder.list_voices()
    return caught.value


async def test_tls_serves_a_client_that_trusts_its_ca_and_refuses_plaintext(
    tls_embedder: embedder_server.RunningEmbedder, certs: Certs, other_certs: Certs, speech: dict[str, Any]
) -> None:
    address = f"127.0.0.1:{tls_embedder.port}"
    async with AsyncEmbedderClient(address, tls=certs.client(with_cert=False)) as embedder:
        first = await embedder.embed(speech["wav"])
        again = await embedder.embed(speech["wav"])
    assert first.speaker.shape == (192,) and again.cache_hit

    assert (await refused(address)).code == grpc.StatusCode.UNAVAILABLE  # plaintext to a TLS port
    wrong_ca = await refused(address, tls=other_certs.client(with_cert=False))
    assert wrong_ca.code == grpc.StatusCode.UNAVAILABLE
    assert "handshake" in wrong_ca.message.lower() or "certificate" in wrong_ca.message.lower()


async def test_mtls_refuses_a_client_without_a_certificate_and_accepts_one_with(
    mtls_embedder: embedder_server.RunningEmbedder, certs: Certs, other_certs: Certs
) -> None:
    address = f"127.0.0.1:{mtls_embedder.port}"
    assert (await refused(address, tls=certs.client(with_cert=False))).code == grpc.StatusCode.UNAVAILABLE
    # A certificate from another CA is no better than none.
    foreign = replace(
        certs.client(with_cert=True), cert=other_certs.path("client.pem"), key=other_certs.path("client.key")
    )
    assert (await refused(address, tls=foreign)).code == grpc.StatusCode.UNAVAILABLE
    async with AsyncEmbedderClient(address, tls=certs.client(with_cert=True)) as embedder:
        assert await embedder.list_voices() == []


async def test_the_synthesizer_speaks_through_an_mtls_embedder(
    mtls_embedder: embedder_server.RunningEmbedder, kokoro: Any, certs: Certs, speech: dict[str, Any]
) -> None:
    """The whole secure path: client -> Synthesizer (mTLS) -> Embedder (mTLS), one voice registered first."""
    embedder_address = f"127.0.0.1:{mtls_embedder.port}"
    client_tls = certs.client(with_cert=True)
    async with AsyncEmbedderClient(embedder_address, tls=client_tls) as embedder:
        await embedder.register_voice("tls-voice", speech["wav"])
    settings = replace(
        SynthesizerSettings(),
        port=0,
        embedder_address=embedder_address,
        tls_cert=certs.path("server.pem"),
        tls_key=certs.path("server.key"),
        tls_client_ca=certs.path("ca.pem"),
        embedder_tls_ca=certs.path("ca.pem"),
        embedder_tls_cert=certs.path("client.pem"),
        embedder_tls_key=certs.path("client.key"),
    )
    running = await synthesizer_server.start(settings, backends={"kokoro": kokoro})
    try:
        await asyncio.wait_for(running.warm_up, 120)
        async with AsyncSynthesizerClient(f"127.0.0.1:{running.port}", tls=client_tls) as synth:
            speech_out = await synth.say("Spoken over mutual TLS.", voice_id="tls-voice")
        assert speech_out.audio[:4] == b"RIFF" and speech_out.duration_s > 0.5
        assert speech_out.conditioning_cache_hit  # the voice registered through the Embedder, found by id
    finally:
        await running.stop()


async def test_a_synthesizer_without_a_client_certificate_cannot_reach_an_mtls_embedder(
    mtls_embedder: embedder_server.RunningEmbedder, kokoro: Any, certs: Certs, speech: dict[str, Any]
) -> None:
    embedder_address = f"127.0.0.1:{mtls_embedder.port}"
    settings = replace(
        SynthesizerSettings(), port=0, embedder_address=embedder_address, embedder_tls_ca=certs.path("ca.pem")
    )
    running = await synthesizer_server.start(settings, backends={"kokoro": kokoro})
    try:
        async with AsyncSynthesizerClient(f"127.0.0.1:{running.port}") as synth:
            with pytest.raises(VoxcacheError) as caught:
                await synth.say("Hello.", voice=speech["wav"], timeout=20)
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        assert embedder_address in caught.value.message
    finally:
        await running.stop()


# -- start-up refusals ----------------------------------------------------------------------
def bad_server_tls(certs: Certs, tmp_path: Path) -> list[tuple[str, ServerTLS, list[str]]]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    missing = str(tmp_path / "nowhere.pem")
    cert, key, ca = certs.path("server.pem"), certs.path("server.key"), certs.path("ca.pem")
    return [
        ("missing certificate", ServerTLS(missing, key), ["--tls-cert", missing, "no such file"]),
        ("missing key", ServerTLS(cert, missing), ["--tls-key", missing, "no such file"]),
        ("certificate without key", ServerTLS(cert, ""), ["--tls-cert is set but --tls-key is not"]),
        ("client CA alone", ServerTLS("", "", ca), ["--tls-client-ca is set but --tls-cert is not"]),
        ("not PEM", ServerTLS(str(garbage), key), ["--tls-cert", str(garbage), "not a PEM file"]),
        ("a folder", ServerTLS(str(tmp_path), key), ["--tls-cert", "a folder"]),
        ("key of another cert", ServerTLS(cert, certs.path("client.key")), ["does not match", cert]),
        ("client CA not PEM", ServerTLS(cert, key, str(garbage)), ["--tls-client-ca", str(garbage)]),
        ("client CA missing", ServerTLS(cert, key, missing), ["--tls-client-ca", missing, "no such file"]),
    ]


def test_bad_tls_files_stop_the_start_with_the_flag_and_file_named(certs: Certs, tmp_path: Path) -> None:
    for case, tls, words in bad_server_tls(certs, tmp_path):
        with pytest.raises(TLSError) as caught:
            tls.credentials()
        for word in words:
            assert word in str(caught.value), (case, str(caught.value))


def test_the_services_exit_with_one_line_naming_the_file(certs: Certs, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.key")
    with pytest.raises(SystemExit) as embedder_exit:
        embedder_server.main(["--tls-cert", certs.path("server.pem"), "--tls-key", missing, "--redis-url", "none"])
    assert str(embedder_exit.value) == f"voxcache-embedder: --tls-key {missing}: no such file"
    with pytest.raises(SystemExit) as synthesizer_exit:
        synthesizer_server.main(["--embedder-tls-cert", certs.path("client.pem")])
    message = str(synthesizer_exit.value)
    assert message.startswith("voxcache-synthesizer: --embedder-tls-ca/--embedder-tls-cert/--embedder-tls-key:")
    assert "needs its key too" in message


async def test_the_cli_over_mtls_with_flags_or_environment(
    mtls_embedder: embedder_server.RunningEmbedder,
    certs: Certs,
    other_certs: Certs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def voxcache(*args: str) -> Any:
        return asyncio.to_thread(cli.main, ["voices", "list", "--embedder", address, "-q", *args])

    address = f"127.0.0.1:{mtls_embedder.port}"
    ca, cert, key = certs.path("ca.pem"), certs.path("client.pem"), certs.path("client.key")
    assert await voxcache("--tls-ca", ca, "--tls-cert", cert, "--tls-key", key) == 0
    assert "no voices" in capsys.readouterr().out.lower()

    assert await voxcache("--tls-ca", ca) == 1
    assert "for mTLS pass --tls-cert/--tls-key too" in capsys.readouterr().err
    assert await voxcache() == 1
    assert "if it requires TLS, pass --tls-ca" in capsys.readouterr().err
    assert await voxcache("--tls-ca", other_certs.path("ca.pem"), "--tls-cert", cert, "--tls-key", key) == 1
    assert "not signed by the CA given with --tls-ca" in capsys.readouterr().err
    missing = str(tmp_path / "missing.key")
    assert await voxcache("--tls-ca", ca, "--tls-cert", cert, "--tls-key", missing) == 2
    assert (
        capsys.readouterr().err
        == f"error: client key {missing}: no such file; check --tls-ca / --tls-cert / --tls-key\n"
    )

    monkeypatch.setenv("VOXCACHE_TLS_CA", ca)
    monkeypatch.setenv("VOXCACHE_TLS_CLIENT_CERT", cert)
    monkeypatch.setenv("VOXCACHE_TLS_CLIENT_KEY", key)
    assert await voxcache() == 0


async def test_the_container_health_check_speaks_mtls(
    mtls_embedder: embedder_server.RunningEmbedder, certs: Certs
) -> None:
    """deploy/healthcheck.py follows the service's TLS settings and presents the client certificate."""
    env = {
        **os.environ,
        "VOXCACHE_EMBEDDER_PORT": str(mtls_embedder.port),
        "VOXCACHE_TLS_CERT": certs.path("server.pem"),
        "VOXCACHE_TLS_KEY": certs.path("server.key"),
        "VOXCACHE_TLS_CLIENT_CA": certs.path("ca.pem"),
        "VOXCACHE_TLS_CA": certs.path("ca.pem"),
    }

    async def probe(**extra: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO_ROOT / "deploy" / "healthcheck.py"), "embedder",
            env={**env, **extra}, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        return process.returncode or 0, output.decode().strip()

    assert await probe() == (1, f"voxcache.v1.Embedder at 127.0.0.1:{mtls_embedder.port}: UNAVAILABLE")  # no cert
    client = {"VOXCACHE_TLS_CLIENT_CERT": certs.path("client.pem"), "VOXCACHE_TLS_CLIENT_KEY": certs.path("client.key")}
    assert await probe(**client) == (0, f"voxcache.v1.Embedder at 127.0.0.1:{mtls_embedder.port}: SERVING")


def test_compose_runs_both_services_and_their_channel_over_mtls() -> None:
    """compose.yaml shows the secure path: certificates made once, mounted read-only, flags set."""
    services = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())["services"]
    assert "/gen_certs.sh /certs" in services["certs"]["entrypoint"][-1]
    folder = "/etc/voxcache/tls"
    for name in ("embedder", "synthesizer"):
        service = services[name]
        assert f"tls:{folder}:ro" in service["volumes"]
        env = service["environment"]
        prefix = f"VOXCACHE_{name.upper()}_TLS_"
        assert (env[prefix + "CERT"], env[prefix + "KEY"]) == (f"{folder}/server.pem", f"{folder}/server.key")
        assert env[prefix + "CLIENT_CA"] == f"{folder}/ca.pem"  # mTLS
        assert env["VOXCACHE_TLS_CLIENT_CERT"] == f"{folder}/client.pem"  # the health check presents one
        assert service["depends_on"]["certs"]["condition"] == "service_completed_successfully"
    synthesizer = services["synthesizer"]["environment"]
    # Its own certificate (CN synthesizer), the only delegate the Embedder accepts; both map CNs to tenants.
    assert synthesizer["VOXCACHE_SYNTHESIZER_EMBEDDER_TLS_CERT"] == f"{folder}/client-synthesizer.pem"
    assert "synthesizer" in services["certs"]["entrypoint"][-1].split("/gen_certs.sh", 1)[1]
    embedder = services["embedder"]["environment"]
    assert embedder["VOXCACHE_EMBEDDER_AUTH_DELEGATES"] == "synthesizer"
    assert embedder["VOXCACHE_EMBEDDER_AUTH"] == synthesizer["VOXCACHE_SYNTHESIZER_AUTH"] == "mtls"
    assert synthesizer["VOXCACHE_EMBEDDER_ADDRESS"].split(":")[0] == "embedder"  # a name the certificate holds
