"""The Embedder through a real gRPC channel on loopback, with the SDK as the caller."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from dataclasses import replace
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.redis_server import LocalRedis, free_port
from services.embedder import server as embedder_server
from services.embedder.server import RunningEmbedder
from services.embedder.settings import EmbedderSettings
from tests.audio_fixtures import encode
from tests.conftest import CountingEncoder
from voxcache import AsyncEmbedderClient, EmbedderClient, VoxcacheError
from voxcache.v1 import embedder_pb2 as pb

INVALID, EXHAUSTED = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture
async def client(embedder_service: RunningEmbedder) -> Any:
    async with AsyncEmbedderClient(f"127.0.0.1:{embedder_service.port}", timeout=30) as c:
        yield c


async def test_miss_then_hit(client: AsyncEmbedderClient, encoder: CountingEncoder, speech: dict[str, Any]) -> None:
    miss = await client.embed(speech["wav"])
    hit = await client.embed(speech["wav"])
    assert (miss.cache_hit, miss.tier, hit.cache_hit, hit.tier) == (False, "computed", True, "local")
    assert miss.speaker.shape == (192,) and miss.speaker.dtype == np.float32
    assert hit.speaker.tobytes() == miss.speaker.tobytes() and encoder.calls == 1
    assert miss.encoder == "ecapa" and len(miss.weights_digest) == 64 and miss.cache_key == hit.cache_key
    assert miss.timings_ms["extract"] > 0 and "extract" not in hit.timings_ms
    stats = await client.stats()
    assert (stats["hits"], stats["misses"], stats["extractions"], stats["hit_ratio"]) == (1, 1, 1, 0.5)
    assert stats["redis_available"] is True and stats["local_bytes"] == 768
    assert stats["extraction_latency"]["samples"] == 1 and stats["extraction_latency"]["p50_ms"] > 0


async def test_sync_client(embedder_service: RunningEmbedder, speech: dict[str, Any]) -> None:
    def use() -> tuple[bool, bool, dict[str, Any]]:
        with EmbedderClient(f"127.0.0.1:{embedder_service.port}") as sync:
            return sync.embed(speech["wav"]).cache_hit, sync.embed(speech["wav"]).cache_hit, sync.stats()

    first, second, stats = await asyncio.to_thread(use)  # the server shares this event loop
    assert (first, second, stats["extractions"]) == (False, True, 1)


async def test_64_concurrent_identical_misses(
    client: AsyncEmbedderClient, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    results = await asyncio.gather(*(client.embed(speech["wav"]) for _ in range(64)))
    assert encoder.calls == 1
    assert len({r.speaker.tobytes() for r in results}) == 1
    stats = await client.stats()
    assert stats["extractions"] == 1 and stats["coalesced"] == 63


def bad_inputs(speech: dict[str, Any]) -> list[tuple[str, dict[str, Any], grpc.StatusCode, str, str]]:
    samples, rate, wav = speech["samples"], speech["rate"], speech["wav"]
    nan = samples.copy()
    nan[5] = np.nan
    return [
        ("empty", {"audio": b""}, INVALID, "audio", "empty"),
        ("not audio", {"audio": b"\x00\x01 definitely not audio" * 50}, INVALID, "audio", "not a readable"),
        ("truncated", {"audio": wav[: len(wav) // 2]}, INVALID, "audio", "truncated"),
        ("short", {"audio": encode(samples[: rate // 3], rate)}, INVALID, "audio", "at least 1 s"),
        ("silent", {"audio": encode(np.zeros(rate * 2, np.float32), rate)}, INVALID, "audio", "silent"),
        ("nan", {"audio": encode(nan, rate, subtype="FLOAT")}, INVALID, "audio", "NaN"),
        ("unknown voice", {"voice_id": "nobody"}, grpc.StatusCode.NOT_FOUND, "voice_id", "'nobody' is not registered"),
        ("bad voice id", {"voice_id": "../etc/passwd"}, INVALID, "voice_id", "invalid"),
        ("unknown encoder", {"audio": wav, "encoder": "xvector"}, INVALID, "encoder", "unknown encoder"),
        ("too long", {"audio": encode(np.tile(samples, 8), rate)}, EXHAUSTED, "audio", "the limit is 30 s"),
        ("over size limit", {"audio": b"RIFF" + bytes(2_500_000)}, EXHAUSTED, "audio", "the limit is 2,097,152"),
    ]


async def test_bad_input_gets_precise_status_and_server_stays_healthy(
    embedder_service: RunningEmbedder, client: AsyncEmbedderClient, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    await client.embed(speech["wav"])  # warm: the decode pool exists before threads are counted
    threads_before = threading.active_count()
    for name, request, code, field, text in bad_inputs(speech):
        with pytest.raises(VoxcacheError) as caught:
            await client._call(client._stub.Embed, pb.EmbedRequest(**request), None)
        error = caught.value
        assert (error.code, error.field) == (code, field), name
        assert text in error.message, (name, error.message)
    with pytest.raises(VoxcacheError) as caught:
        await client._call(client._stub.Embed, pb.EmbedRequest(), None)
    assert (caught.value.code, caught.value.field) == (INVALID, "audio")
    # Past gRPC's own receive limit the transport refuses the message before our code runs.
    with pytest.raises(VoxcacheError) as caught:
        await client.embed(b"RIFF" + bytes(4 * 1024 * 1024))
    assert caught.value.code == EXHAUSTED

    assert threading.active_count() <= threads_before + 4  # bounded decode pool, nothing leaked per request
    assert encoder.calls == 1  # no bad input reached the model
    assert (await client.embed(speech["wav"])).cache_hit
    stats = await client.stats()
    assert stats["errors"] == len(bad_inputs(speech)) + 1


async def test_deadline_shorter_than_extraction(
    client: AsyncEmbedderClient, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    gate = threading.Event()
    encoder.before = lambda: gate.wait(10)
    with pytest.raises(VoxcacheError) as caught:
        await client.embed(speech["wav"], timeout=0.3)
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    gate.set()
    for _ in range(200):  # the extraction finishes anyway (however busy the machine) and is cached
        if (await client.stats())["extractions"] == 1:
            break
        await asyncio.sleep(0.05)
    assert (await client.embed(speech["wav"])).cache_hit and encoder.calls == 1


async def test_voices_over_grpc(client: AsyncEmbedderClient, speech: dict[str, Any]) -> None:
    voice, conditioning = await client.register_voice("narrator", speech["wav"])
    assert voice.voice_id == "narrator" and voice.encoders == ["ecapa"] and not conditioning.cache_hit
    by_name = await client.embed(voice_id="narrator")
    assert by_name.cache_hit and by_name.speaker.tobytes() == conditioning.speaker.tobytes()
    assert [v.voice_id for v in await client.list_voices()] == ["narrator"]
    with pytest.raises(VoxcacheError) as caught:
        await client.register_voice("narrator", speech["wav"])
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS
    again, _ = await client.register_voice("narrator", speech["wav"], overwrite=True)
    assert again.audio_sha256 == voice.audio_sha256
    assert (await client.delete_voice("narrator")).voice_id == "narrator"
    with pytest.raises(VoxcacheError) as caught:
        await client.delete_voice("narrator")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND and caught.value.field == "voice_id"


async def test_preload_stream(
    client: AsyncEmbedderClient, encoder: CountingEncoder, speech: dict[str, Any], other_speech: bytes
) -> None:
    clips = [("a.wav", speech["wav"]), ("b.wav", other_speech), ("bad.wav", b"garbage" * 10), ("a2.wav", speech["wav"])]
    summary = await client.preload(clips)
    assert (summary.received, summary.computed + summary.cached, summary.failed) == (4, 3, 1)
    assert encoder.calls == 2  # the duplicate coalesced or hit
    assert summary.failures == [
        {"index": 2, "label": "bad.wav", "code": "INVALID_ARGUMENT", "message": summary.failures[0]["message"]}
    ]
    assert "not a readable" in summary.failures[0]["message"]
    assert (await client.preload([speech["wav"]])).cached == 1


async def test_health_and_reflection(embedder_service: RunningEmbedder) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{embedder_service.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "voxcache.v1.Embedder"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="voxcache.v1.Embedder"),
        ]
        replies = [r async for r in stub.ServerReflectionInfo(iter(requests))]
        names = {s.name for s in replies[0].list_services_response.service}
        assert {"voxcache.v1.Embedder", "grpc.health.v1.Health"} <= names
        assert replies[1].file_descriptor_response.file_descriptor_proto


async def test_metrics_endpoint_and_graceful_stop(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    port = free_port()
    settings = replace(EmbedderSettings(), port=0, metrics_port=port, redis_url=redis_server.url, cache_prefix=prefix)
    running = await embedder_server.start(settings, encoders={"ecapa": encoder})
    assert running.metrics is not None and running.metrics[0].server_address[0] == "127.0.0.1"  # loopback by default
    async with AsyncEmbedderClient(f"127.0.0.1:{running.port}") as client:
        await client.embed(speech["wav"])
        await client.embed(speech["wav"])
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read())
        text = body.decode()
        assert 'voxcache_embed_requests_total{outcome="miss"} 1.0' in text
        assert 'voxcache_embed_requests_total{outcome="hit_local"} 1.0' in text
        assert "voxcache_cache_hit_ratio 0.5" in text and "voxcache_extraction_seconds_bucket" in text

        gate = threading.Event()
        encoder.before = lambda: gate.wait(10)
        in_flight = asyncio.create_task(
            client.embed(encode(speech["samples"] * 0.5, speech["rate"]))  # a clip not yet cached
        )
        await asyncio.sleep(0.2)
        stopping = asyncio.create_task(running.stop())
        await asyncio.sleep(0.2)
        gate.set()
        result = await in_flight  # finished within the grace period
        await stopping
    assert result.tier == "computed"
