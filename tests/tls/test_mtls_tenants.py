"""`--auth mtls`: the client certificate's CN is the tenant, and the Synthesizer a named delegate."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import grpc
import pytest

from services.common.redis_server import LocalRedis
from services.embedder import server as embedder_server
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.settings import SynthesizerSettings
from tests.tls.conftest import Certs
from voxcache import AsyncEmbedderClient, AsyncSynthesizerClient, VoxcacheError
from voxcache.v1 import embedder_pb2 as epb
from voxcache.v1 import embedder_pb2_grpc


async def test_certificate_names_are_tenants_end_to_end(
    encoder: Any, redis_server: LocalRedis, prefix: str, kokoro: Any, certs: Certs, speech: dict[str, Any]
) -> None:
    mutual = {
        "tls_cert": certs.path("server.pem"),
        "tls_key": certs.path("server.key"),
        "tls_client_ca": certs.path("ca.pem"),
        "auth": "mtls",
    }
    embedder_settings = replace(
        EmbedderSettings(),
        port=0,
        metrics_port=0,
        redis_url=redis_server.url,
        cache_prefix=prefix,
        auth_delegates="synthesizer",
        **mutual,
    )
    embedder = await embedder_server.start(embedder_settings, encoders={"ecapa": encoder})
    address = f"127.0.0.1:{embedder.port}"
    synthesizer_settings = replace(
        SynthesizerSettings(),
        port=0,
        embedder_address=address,
        embedder_tls_ca=certs.path("ca.pem"),
        embedder_tls_cert=certs.path("client-synthesizer.pem"),
        embedder_tls_key=certs.path("client-synthesizer.key"),
        **mutual,
    )
    synthesizer = await synthesizer_server.start(synthesizer_settings, backends={"kokoro": kokoro})
    try:
        await asyncio.wait_for(synthesizer.warm_up, 120)
        async with AsyncEmbedderClient(address, tls=certs.client_as("acme")) as acme:
            await acme.register_voice("narrator", speech["wav"])
            assert [v.voice_id for v in await acme.list_voices()] == ["narrator"]
        async with AsyncEmbedderClient(address, tls=certs.client_as("globex")) as globex:
            assert await globex.list_voices() == []
        async with AsyncEmbedderClient(address, tls=certs.client(with_cert=True)) as someone:  # CN voxcache-client
            assert await someone.list_voices() == []

        synth_address = f"127.0.0.1:{synthesizer.port}"
        async with AsyncSynthesizerClient(synth_address, tls=certs.client_as("acme")) as acme_synth:
            spoken = await acme_synth.say("Certified speech.", voice_id="narrator")
            assert spoken.audio[:4] == b"RIFF" and spoken.conditioning_cache_hit
        async with AsyncSynthesizerClient(synth_address, tls=certs.client_as("globex")) as globex_synth:
            with pytest.raises(VoxcacheError) as caught:
                await globex_synth.say("Not my voice.", voice_id="narrator")
            assert caught.value.code == grpc.StatusCode.NOT_FOUND
        # acme's certificate is no delegate: it cannot name another tenant at the Embedder.
        acme_tls = certs.client_as("acme")
        async with grpc.aio.secure_channel(address, acme_tls.credentials(), options=acme_tls.options()) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await embedder_pb2_grpc.EmbedderStub(channel).ListVoices(
                    epb.ListVoicesRequest(), metadata=(("voxcache-tenant", "globex"),), timeout=10
                )
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await synthesizer.stop()
        await embedder.stop()
