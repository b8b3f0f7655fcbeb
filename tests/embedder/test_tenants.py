"""Tenants over real gRPC: bearer tokens, isolated voices and content cache, delegation.

Both services run with `--auth token` on one tokens file; the Synthesizer is a delegate and
calls the Embedder for the tenant whose token it was given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import tokens
from services.common.redis_server import LocalRedis
from services.embedder import server as embedder_server
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.backends.kokoro import KokoroBackend
from services.synthesizer.settings import SynthesizerSettings
from tests.conftest import CountingEncoder
from voxcache import tensors
from voxcache.v1 import embedder_pb2 as epb
from voxcache.v1 import embedder_pb2_grpc, synthesizer_pb2_grpc
from voxcache.v1 import synthesizer_pb2 as spb


@dataclass
class Tokens:
    path: Path
    acme: str
    globex: str
    synthesizer: str


@pytest.fixture
def issued(tmp_path: Path) -> Tokens:
    path = tmp_path / "tokens.json"
    return Tokens(
        path,
        tokens.add(path, "acme"),
        tokens.add(path, "globex"),
        tokens.add(path, "synthesizer", delegate=True),
    )


def as_(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def start_embedder(
    encoder: CountingEncoder, redis: LocalRedis, prefix: str, issued: Tokens, **extra: Any
) -> embedder_server.RunningEmbedder:
    settings = replace(
        EmbedderSettings(),
        port=0,
        metrics_port=0,
        redis_url=redis.url,
        cache_prefix=prefix,
        auth="token",
        auth_tokens_file=str(issued.path),
        **extra,
    )
    return await embedder_server.start(settings, encoders={"ecapa": encoder})


@pytest_asyncio.fixture
async def embedder(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, issued: Tokens
) -> AsyncIterator[embedder_pb2_grpc.EmbedderStub]:
    running = await start_embedder(encoder, redis_server, prefix, issued)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield embedder_pb2_grpc.EmbedderStub(channel)
    await running.stop()


def speaker(response: Any) -> np.ndarray:
    return tensors.map_from_proto(response.conditioning.tensors)["speaker"]


async def test_no_or_bad_token_is_unauthenticated_on_every_rpc_shape(
    embedder: embedder_pb2_grpc.EmbedderStub, speech: dict[str, Any]
) -> None:
    calls = [
        lambda md: embedder.Embed(epb.EmbedRequest(audio=speech["wav"]), metadata=md, timeout=10),
        lambda md: embedder.ListVoices(epb.ListVoicesRequest(), metadata=md, timeout=10),
        lambda md: embedder.Preload(iter([epb.PreloadRequest(audio=speech["wav"])]), metadata=md, timeout=10),
    ]
    for call in calls:
        for metadata, says in (((), "needs an 'authorization: Bearer"), (as_("vxc_forged"), "not recognised")):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(metadata)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value
            assert says in caught.value.details()


async def test_health_stays_open_for_probes(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, issued: Tokens
) -> None:
    running = await start_embedder(encoder, redis_server, prefix, issued)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop()


async def test_one_tenant_cannot_list_use_overwrite_or_delete_anothers_voice(
    embedder: embedder_pb2_grpc.EmbedderStub, issued: Tokens, speech: dict[str, Any], other_speech: bytes
) -> None:
    acme, globex = as_(issued.acme), as_(issued.globex)
    mine = await embedder.RegisterVoice(
        epb.RegisterVoiceRequest(voice_id="narrator", audio=speech["wav"]), metadata=acme, timeout=30
    )
    assert [v.voice_id for v in (await embedder.ListVoices(epb.ListVoicesRequest(), metadata=acme)).voices] == [
        "narrator"
    ]
    assert (await embedder.ListVoices(epb.ListVoicesRequest(), metadata=globex)).voices == []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await embedder.Embed(epb.EmbedRequest(voice_id="narrator"), metadata=globex, timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await embedder.DeleteVoice(epb.DeleteVoiceRequest(voice_id="narrator"), metadata=globex, timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    # globex takes the same name with overwrite: it gets its own voice, acme's is untouched.
    theirs = await embedder.RegisterVoice(
        epb.RegisterVoiceRequest(voice_id="narrator", audio=other_speech, overwrite=True), metadata=globex, timeout=30
    )
    assert not np.allclose(speaker(theirs), speaker(mine))
    again = await embedder.Embed(epb.EmbedRequest(voice_id="narrator"), metadata=acme, timeout=30)
    np.testing.assert_array_equal(speaker(again), speaker(mine))
    await embedder.DeleteVoice(epb.DeleteVoiceRequest(voice_id="narrator"), metadata=globex, timeout=30)
    # acme's voice and its reference audio survive the other tenant's delete (re-derivable by a bypass).
    rederived = await embedder.Embed(
        epb.EmbedRequest(voice_id="narrator", cache=epb.CacheOptions(bypass=True)), metadata=acme, timeout=30
    )
    np.testing.assert_allclose(speaker(rederived), speaker(mine), atol=1e-5)


async def test_cache_hits_do_not_reveal_another_tenants_upload(
    embedder: embedder_pb2_grpc.EmbedderStub, issued: Tokens, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    request = epb.EmbedRequest(audio=speech["wav"])
    first = await embedder.Embed(request, metadata=as_(issued.acme), timeout=30)
    other = await embedder.Embed(request, metadata=as_(issued.globex), timeout=30)
    assert not first.cache_hit and not other.cache_hit and other.tier == epb.CACHE_TIER_COMPUTED
    assert first.conditioning.cache_key != other.conditioning.cache_key
    assert (await embedder.Embed(request, metadata=as_(issued.globex), timeout=30)).cache_hit
    assert encoder.calls == 2


async def test_sharing_the_content_cache_is_an_explicit_option(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, issued: Tokens, speech: dict[str, Any]
) -> None:
    running = await start_embedder(encoder, redis_server, prefix, issued, share_content_cache=True)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            request = epb.EmbedRequest(audio=speech["wav"])
            await stub.Embed(request, metadata=as_(issued.acme), timeout=30)
            assert (await stub.Embed(request, metadata=as_(issued.globex), timeout=30)).cache_hit
            assert encoder.calls == 1
    finally:
        await running.stop()


async def test_a_tenant_cannot_claim_to_be_another(
    embedder: embedder_pb2_grpc.EmbedderStub, issued: Tokens, speech: dict[str, Any]
) -> None:
    claim = (*as_(issued.acme), ("voxcache-tenant", "globex"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await embedder.ListVoices(epb.ListVoicesRequest(), metadata=claim, timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The delegate may: it sees the tenant's voices, not its own.
    await embedder.RegisterVoice(
        epb.RegisterVoiceRequest(voice_id="host", audio=speech["wav"]), metadata=as_(issued.acme), timeout=30
    )
    delegated = (*as_(issued.synthesizer), ("voxcache-tenant", "acme"))
    listed = await embedder.ListVoices(epb.ListVoicesRequest(), metadata=delegated, timeout=10)
    assert [v.voice_id for v in listed.voices] == ["host"]
    assert (await embedder.ListVoices(epb.ListVoicesRequest(), metadata=as_(issued.synthesizer))).voices == []


async def test_the_synthesizer_speaks_only_with_the_callers_own_voices(
    encoder: CountingEncoder,
    redis_server: LocalRedis,
    prefix: str,
    issued: Tokens,
    kokoro: KokoroBackend,
    speech: dict[str, Any],
) -> None:
    running = await start_embedder(encoder, redis_server, prefix, issued)
    base = replace(
        SynthesizerSettings(),
        port=0,
        embedder_address=f"127.0.0.1:{running.port}",
        auth="token",
        auth_tokens_file=str(issued.path),
    )
    synthesizer = await synthesizer_server.start(replace(base, embedder_token=issued.synthesizer), {"kokoro": kokoro})
    misconfigured = await synthesizer_server.start(replace(base, embedder_token=issued.acme), {"kokoro": kokoro})
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as e_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{synthesizer.port}") as s_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{misconfigured.port}") as m_channel,
        ):
            await embedder_pb2_grpc.EmbedderStub(e_channel).RegisterVoice(
                epb.RegisterVoiceRequest(voice_id="anchor", audio=speech["wav"]), metadata=as_(issued.acme), timeout=30
            )
            say = synthesizer_pb2_grpc.SynthesizerStub(s_channel)
            request = spb.SynthesizeRequest(text="Good evening.", voice_id="anchor")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await say.Synthesize(request, timeout=60)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            spoken = await say.Synthesize(request, metadata=as_(issued.acme), timeout=60)
            assert len(spoken.audio) > 1000
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await say.Synthesize(request, metadata=as_(issued.globex), timeout=60)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            stream = say.SynthesizeStream(request, metadata=as_(issued.globex), timeout=60)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in stream:
                    pass
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND

            # A Synthesizer holding a non-delegate token is the operator's fault, not the caller's.
            wrong = synthesizer_pb2_grpc.SynthesizerStub(m_channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await wrong.Synthesize(request, metadata=as_(issued.acme), timeout=60)
            assert caught.value.code() == grpc.StatusCode.INTERNAL
            assert "refused the Synthesizer" in caught.value.details()
    finally:
        await misconfigured.stop()
        await synthesizer.stop()
        await running.stop()


async def test_an_anonymous_embedder_refuses_to_act_for_a_tenant(
    embedder_service: embedder_server.RunningEmbedder,
) -> None:
    """A token-mode Synthesizer in front of an anonymous Embedder would mix every tenant's voices."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{embedder_service.port}") as channel:
        stub = embedder_pb2_grpc.EmbedderStub(channel)
        assert (await stub.ListVoices(epb.ListVoicesRequest(), timeout=10)).voices == []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListVoices(epb.ListVoicesRequest(), metadata=(("voxcache-tenant", "acme"),), timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "without authentication" in caught.value.details()
