"""Warm restarts: hot entries tracked in Redis, loaded into a fresh worker's L1 before SERVING.

Real parts: a real redis-server, the real ECAPA weights, real Embedder servers over gRPC on
loopback ports; the encoder is wrapped only to count its calls.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import grpc
import numpy as np
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.redis_server import LocalRedis, free_port
from services.embedder import server as embedder_server
from services.embedder.cache import keys
from services.embedder.cache.tiered import CacheTier
from services.embedder.core import Embedder
from services.embedder.settings import EmbedderSettings
from tests.audio_fixtures import encode
from tests.conftest import CountingEncoder, make_core, raw_client
from voxcache import AsyncEmbedderClient


@pytest.fixture(scope="module")
def clips(speech: dict[str, Any]) -> list[bytes]:
    """Three different clips of one voice (other gains: other samples, other keys)."""
    return [encode(speech["samples"] * gain, speech["rate"]) for gain in (1.0, 0.8, 0.6)]


@pytest.fixture
def raw(redis_server: LocalRedis) -> redis.Redis | redis.RedisCluster:
    return raw_client(redis_server.url)


async def make_hot(core: Embedder, clips: list[bytes], counts: tuple[int, ...]) -> list[str]:
    """Ask for clip i counts[i] times; the entries' keys, in clip order."""
    out = []
    for clip, count in zip(clips, counts, strict=True):
        for _ in range(count):
            result = await core.embed(audio=clip)
        out.append(result.conditioning.cache_key)
    await core.hotness.flush()
    return out


async def test_requests_are_counted_in_the_hot_set(
    core: Embedder, clips: list[bytes], raw: redis.Redis, prefix: str
) -> None:
    made = await make_hot(core, clips, (5, 1, 3))
    ranked = raw.zrevrange(keys.hot(prefix), 0, -1, withscores=True)
    assert [(k.decode(), s) for k, s in ranked] == [(made[0], 5.0), (made[2], 3.0), (made[1], 1.0)]
    await core.embed(audio=clips[1])
    await core.hotness.flush()
    assert raw.zscore(keys.hot(prefix), made[1]) == 2.0
    # Once per half-life (a marker key's TTL), the next flush halves every score first.
    raw.delete(keys.hot(prefix) + ":halved")
    await core.embed(audio=clips[1])
    await core.hotness.flush()
    assert raw.zscore(keys.hot(prefix), made[0]) == 2.5 and raw.zscore(keys.hot(prefix), made[1]) == 2.0


async def test_a_fresh_worker_loads_the_hottest_entries_within_its_budget(
    core: Embedder,
    encoder: CountingEncoder,
    clips: list[bytes],
    redis_server: LocalRedis,
    prefix: str,
    raw: redis.Redis,
) -> None:
    made = await make_hot(core, clips, (5, 1, 3))
    fresh = make_core(encoder, redis_server.url, prefix)
    fresh.cache.local.capacity_bytes = 2 * 768  # room for two ECAPA entries
    try:
        warmed = await fresh.warm_start()
        assert (warmed.entries, warmed.bytes) == (2, 2 * 768)
        assert made[0] in fresh.cache.local._entries and made[2] in fresh.cache.local._entries
        assert made[1] not in fresh.cache.local._entries
        calls = encoder.calls
        for clip in (clips[0], clips[2]):
            hit = await fresh.embed(audio=clip)
            assert hit.tier is CacheTier.LOCAL
            assert hit.conditioning.tensors["speaker"].dtype == np.float32
        assert encoder.calls == calls
        assert fresh.snapshot().warm_start_entries == 2
    finally:
        await fresh.close()


async def test_entries_gone_from_redis_leave_the_hot_set(
    core: Embedder,
    encoder: CountingEncoder,
    clips: list[bytes],
    redis_server: LocalRedis,
    prefix: str,
    raw: redis.Redis,
) -> None:
    made = await make_hot(core, clips, (2, 1, 1))
    raw.delete(made[0])
    fresh = make_core(encoder, redis_server.url, prefix)
    try:
        assert (await fresh.warm_start()).entries == 2
    finally:
        await fresh.close()
    assert raw.zscore(keys.hot(prefix), made[0]) is None


async def test_redis_down_starts_cold_without_failing(encoder: CountingEncoder, prefix: str) -> None:
    nowhere = make_core(encoder, "redis://127.0.0.1:1", prefix, warm_start_s=2.0)
    try:
        warmed = await nowhere.warm_start()
    finally:
        await nowhere.close()
    assert warmed.entries == 0 and warmed.ms < 2000


async def test_a_restarted_embedder_serves_its_first_hits_from_l1(
    encoder: CountingEncoder, clips: list[bytes], redis_server: LocalRedis, prefix: str
) -> None:
    """Run an Embedder, make entries hot, stop it, start a new one on the same Redis: the moment
    its health first says SERVING, the hot clips are L1 hits and the model is never asked."""
    settings = replace(
        EmbedderSettings(), port=0, metrics_port=0, redis_url=redis_server.url, cache_prefix=prefix, hotness_flush_s=60
    )
    first = await embedder_server.start(settings, encoders={"ecapa": encoder})
    try:
        for clip, count in zip(clips, (4, 2, 1), strict=True):
            for _ in range(count):
                await first.core.embed(audio=clip)
    finally:
        await first.stop()  # flushes the counts it had not written yet
    calls = encoder.calls
    assert calls == 3

    port = free_port()
    restart = asyncio.create_task(embedder_server.start(replace(settings, port=port), encoders={"ecapa": encoder}))
    seen: list[int] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while not seen or seen[-1] != health_pb2.HealthCheckResponse.SERVING:
            try:
                seen.append((await health.Check(health_pb2.HealthCheckRequest(), timeout=1)).status)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.01)  # not listening yet
        async with AsyncEmbedderClient(f"127.0.0.1:{port}", timeout=30) as client:
            tiers = [(await client.embed(clip)).tier for clip in clips]
            stats = await client.stats()
    second = await restart
    try:
        assert tiers == ["local", "local", "local"] and encoder.calls == calls
        assert stats["warm_start_entries"] == 3 and stats["warm_start_bytes"] == 3 * 768
        assert stats["warm_start_ms"] > 0 and stats["local_hits"] == 3
    finally:
        await second.stop()


async def test_warm_start_off_starts_cold(
    encoder: CountingEncoder, clips: list[bytes], redis_server: LocalRedis, prefix: str
) -> None:
    core = make_core(encoder, redis_server.url, prefix)
    try:
        await make_hot(core, clips, (1, 1, 1))
    finally:
        await core.close()
    settings = replace(
        EmbedderSettings(), port=0, metrics_port=0, redis_url=redis_server.url, cache_prefix=prefix, warm_start=False
    )
    running = await embedder_server.start(settings, encoders={"ecapa": encoder})
    try:
        assert len(running.core.cache.local) == 0
        assert (await running.core.embed(audio=clips[0])).tier is CacheTier.REDIS
    finally:
        await running.stop()


async def test_the_hot_set_keeps_only_the_hottest(
    encoder: CountingEncoder, clips: list[bytes], redis_server: LocalRedis, prefix: str, raw: redis.Redis
) -> None:
    core = make_core(encoder, redis_server.url, prefix, warm_start_entries=2)
    try:
        made = await make_hot(core, clips, (3, 1, 2))
    finally:
        await core.close()
    assert [k.decode() for k in raw.zrevrange(keys.hot(prefix), 0, -1)] == [made[0], made[2]]
