"""Cross-process single-flight (cache/lease.py) between Embedder cores on one real redis-server.

Each core here has its own L1, in-process single-flight, Redis pool and lease subscriber,
exactly as a separate worker process has; tests/embedder/test_workers.py repeats the
central claims with real processes, including a holder killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from services.common.errors import DeadlineExceeded
from services.common.redis_server import LocalRedis
from services.embedder.cache import keys
from services.embedder.cache.tiered import CacheTier
from services.embedder.core import Embedder
from tests.conftest import CountingEncoder, make_core, raw_client


@pytest_asyncio.fixture
async def pair(
    ecapa: Any, redis_server: LocalRedis, prefix: str
) -> AsyncIterator[list[tuple[Embedder, CountingEncoder]]]:
    """Two workers' worth of Embedder on one Redis and one prefix, each with its own counting encoder."""
    made = []
    for _ in range(2):
        encoder = CountingEncoder(ecapa)
        # Redis timeouts of 2 s: at 64 connections opened at once on a loaded 2-core machine, the
        # default 250 ms fails open (each worker then extracts alone, correctly but not what is tested).
        core = make_core(encoder, redis_server.url, prefix, timeout_s=2.0, lease_ms=1500, lease_poll_ms=100)
        made.append((core, encoder))
    yield made
    for core, _ in made:
        await core.close()


def slow(encoder: CountingEncoder, seconds: float) -> threading.Event:
    """Hold every forward pass of `encoder` for `seconds`; the event is set when one has begun."""
    began = threading.Event()

    def hold() -> None:
        began.set()
        time.sleep(seconds)

    encoder.before = hold
    return began


async def test_64_identical_misses_over_two_workers_extract_once(
    pair: list[tuple[Embedder, CountingEncoder]], speech: dict[str, Any]
) -> None:
    """32 misses on worker A; once A's extraction is under way (it holds the lease), 32 more on
    worker B, which must wait for A's entry instead of extracting. Starting B only once A's pass
    has begun makes the overlap certain: B asking after A had finished would prove nothing."""
    (a, enc_a), (b, enc_b) = pair
    began = slow(enc_a, 2.0)
    slow(enc_b, 2.0)
    first = [asyncio.create_task(a.embed(audio=speech["wav"])) for _ in range(32)]
    assert await asyncio.to_thread(began.wait, 30), "A never started its extraction"
    second = [asyncio.create_task(b.embed(audio=speech["wav"])) for _ in range(32)]
    results = await asyncio.wait_for(asyncio.gather(*first, *second), timeout=60)
    assert (enc_a.calls, enc_b.calls) == (1, 0)
    assert a.stats.extractions + b.stats.extractions == 1
    vectors = {b"".join(t.tobytes() for t in r.conditioning.tensors.values()) for r in results}
    assert len(vectors) == 1
    # B answered its 32 from Redis, after its one claim waited on A's lease.
    assert b.cache.leases is not None and b.cache.leases.counters.peer_fills == 1
    assert {r.tier for r in results[32:]} == {CacheTier.REDIS}


async def test_a_lease_whose_holder_vanished_is_taken_over_after_it_expires(
    pair: list[tuple[Embedder, CountingEncoder]], redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    """A holder that died never renews nor releases: its lease (here written by hand, as a dead
    worker leaves it) expires, one waiter takes over, and the model runs exactly once more."""
    (a, enc_a), (b, enc_b) = pair
    key = keys.conditioning(prefix, enc_a.name, enc_a.weights_digest, keys.content_digest(speech["wav"]))
    client = raw_client(redis_server.url)
    try:
        assert client.set(keys.lease(key.redis_key), "dead-worker:1:abc", px=800, nx=True)
        started = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(a.embed(audio=speech["wav"]), b.embed(audio=speech["wav"])), 30)
        assert time.monotonic() - started >= 0.7  # nobody extracted while the dead lease stood
        assert enc_a.calls + enc_b.calls == 1
        assert {r.tier for r in results} == {CacheTier.COMPUTED, CacheTier.REDIS}
        takeovers = sum(c.cache.leases.counters.takeovers for c in (a, b) if c.cache.leases is not None)
        assert takeovers == 1
        assert client.exists(key.redis_key) == 1
        assert client.exists(keys.lease(key.redis_key)) == 0  # released by the new holder
    finally:
        client.close()


async def test_a_waiter_past_its_deadline_gets_deadline_exceeded_and_the_extraction_still_lands(
    pair: list[tuple[Embedder, CountingEncoder]], redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    (a, enc_a), (b, enc_b) = pair
    began = slow(enc_a, 1.5)
    holder = asyncio.create_task(a.embed(audio=speech["wav"]))
    assert await asyncio.to_thread(began.wait, 30)
    with pytest.raises(DeadlineExceeded, match="continues and is cached"):
        await b.embed(audio=speech["wav"], deadline=time.monotonic() + 0.3)
    assert (await asyncio.wait_for(holder, 30)).tier is CacheTier.COMPUTED
    assert enc_b.calls == 0
    assert (await b.embed(audio=speech["wav"])).tier is CacheTier.REDIS
    assert enc_a.calls + enc_b.calls == 1


async def test_without_redis_each_worker_extracts_by_itself(ecapa: Any, speech: dict[str, Any]) -> None:
    """Fail-open: no store, no lease; the request is served by the local model."""
    encoder = CountingEncoder(ecapa)
    core = make_core(encoder, "redis://127.0.0.1:1", "nolease", lease_ms=1500)
    try:
        result = await asyncio.wait_for(core.embed(audio=speech["wav"]), 30)
        assert result.tier is CacheTier.COMPUTED and encoder.calls == 1
    finally:
        await core.close()
