"""Entries computed while Redis was down reach Redis once it is back, without recomputing them."""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from services.common.redis_server import LocalRedis
from services.embedder.cache.tiered import CacheTier
from services.embedder.cache.writeback import WriteBackQueue
from services.embedder.core import CacheOptions
from services.embedder.metrics import StatsCollector
from tests.conftest import CountingEncoder, make_core


async def _until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_entries_computed_during_an_outage_are_written_back(
    encoder: CountingEncoder, speech: dict[str, Any], other_speech: bytes
) -> None:
    own = LocalRedis().start()
    core = make_core(encoder, own.url, "writeback", retry_s=0.2)
    second = make_core(encoder, own.url, "writeback", retry_s=0.2)
    try:
        own.stop()  # Redis is down before anything is cached
        plain = await core.embed(audio=speech["wav"])
        pinned = await core.embed(audio=other_speech, options=CacheOptions(pin=True))
        assert plain.tier is CacheTier.COMPUTED and pinned.tier is CacheTier.COMPUTED  # served regardless
        waiting = core.snapshot()
        assert waiting.write_back_pending == 2 and waiting.write_back_bytes > 0
        extractions = encoder.calls

        own.start()  # back, empty (a throwaway folder): only the write-back can fill it
        client = redis.Redis.from_url(own.url)
        keys = (plain.conditioning.cache_key, pinned.conditioning.cache_key)
        # With no request at all: the background drain (its counters follow the last write by a loop step).
        await _until(lambda: client.exists(*keys) == 2 and core.snapshot().write_back_pending == 0)
        assert client.ttl(plain.conditioning.cache_key) > 0  # an ordinary entry keeps its TTL
        assert client.ttl(pinned.conditioning.cache_key) == -1  # a pin stays a pin
        drained = core.snapshot()
        assert (drained.write_back_pending, drained.write_back_bytes, drained.write_back_written) == (0, 0, 2)
        metrics = {m.name: m.samples[0].value for m in StatsCollector(core.snapshot).collect()}
        assert metrics["voxcache_write_back_written"] == 2 and metrics["voxcache_write_back_pending"] == 0

        for clip in (speech["wav"], other_speech):  # another worker: empty L1, Redis answers
            assert (await second.embed(audio=clip)).tier is CacheTier.REDIS
        assert encoder.calls == extractions  # nothing was extracted again
    finally:
        await core.close()
        await second.close()
        own.close()


async def test_without_a_store_nothing_is_queued(encoder: CountingEncoder, speech: dict[str, Any]) -> None:
    core = make_core(encoder, None, "nostore")
    try:
        await core.embed(audio=speech["wav"])
        assert core.cache.write_back is None and core.snapshot().write_back_pending == 0
    finally:
        await core.close()


def test_the_queue_is_bounded_and_drops_the_oldest() -> None:
    queue = WriteBackQueue(max_entries=3, max_bytes=10, drain_every_s=1.0)
    for key in "abc":
        queue.add(key, b"xx", 60)
    queue.add("d", b"xx", 60)  # a fourth entry: "a", the oldest, goes
    assert len(queue) == 3 and queue.counters.dropped == 1 and queue.oldest().key == "b"  # type: ignore[union-attr]
    queue.add("e", b"x" * 7, 60)  # 13 bytes > 10: the oldest go until it fits (b, then c)
    assert [queue.oldest().key, len(queue), queue.nbytes] == ["d", 2, 9]  # type: ignore[union-attr]
    assert queue.counters.dropped == 3


def test_a_pin_is_never_downgraded_but_unpin_releases_it() -> None:
    queue = WriteBackQueue(max_entries=10, max_bytes=1000, drain_every_s=1.0)
    queue.add("k", b"v1", None)
    queue.add("k", b"v2", 60)  # a later plain write of the same key
    pending = queue.oldest()
    assert pending is not None and (pending.value, pending.ttl_s, len(queue)) == (b"v2", None, 1)
    queue.unpin("k", 120)  # its voice was deleted before Redis came back
    pending = queue.oldest()
    assert pending is not None and pending.ttl_s == 120
    queue.add("k", b"v3", 60)  # replaced while being written: done() of the old write keeps the new one
    queue.done(pending)
    assert len(queue) == 1 and queue.counters.written == 0


async def test_get_stats_reports_the_write_back_queue(
    encoder: CountingEncoder, speech: dict[str, Any], other_speech: bytes
) -> None:
    """Over a real gRPC server: the queue's figures reach GetStats and `voxcache stats`, not only /metrics."""
    from dataclasses import replace

    from services.embedder import server as embedder_server
    from services.embedder.settings import EmbedderSettings
    from voxcache import AsyncEmbedderClient
    from voxcache.cli import stats_rows

    own = LocalRedis().start()
    settings = replace(
        EmbedderSettings(), port=0, metrics_port=0, redis_url=own.url, cache_prefix="wbstats", redis_retry_s=0.2
    )
    running = await embedder_server.start(replace(settings, write_back_entries=1), encoders={"ecapa": encoder})
    try:
        async with AsyncEmbedderClient(f"127.0.0.1:{running.port}", timeout=30) as client:
            own.stop()
            await client.embed(speech["wav"])
            await client.embed(other_speech)  # a queue of one entry: the first one is dropped for it
            waiting = await client.stats()
            assert (waiting["write_back_pending"], waiting["write_back_dropped"]) == (1, 1)
            assert waiting["write_back_bytes"] == running.core.snapshot().write_back_bytes > 0
            assert dict(stats_rows(waiting))["redis write-back"].startswith("1 waiting (")

            own.start()

            for _ in range(200):  # the background drain, with no request at all
                drained = await client.stats()
                if drained["write_back_written"] == 1:
                    break
                await asyncio.sleep(0.05)
            assert (drained["write_back_pending"], drained["write_back_bytes"]) == (0, 0)
            assert drained["write_back_written"] == 1
    finally:
        await running.stop()
        own.close()
