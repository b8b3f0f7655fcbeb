"""TieredCache on its own: no model, no gRPC, a real redis-server (or none at all).

`compute` here is a plain coroutine that makes a vector, so these tests pin down the
cache's rules (tiers, single-flight, pinning, fail-open, corrupt values) independently of
the encoder and of the Embedder that orchestrates them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest_asyncio

from services.common.redis_server import LocalRedis
from services.embedder.cache import keys, record
from services.embedder.cache.local import LocalCache
from services.embedder.cache.redis_store import RedisStore
from services.embedder.cache.store import NoStore, Store
from services.embedder.cache.tiered import CachePolicy, CacheTier, TieredCache
from services.embedder.conditioning import Conditioning, TensorSpec
from tests.conftest import raw_client

TTL = 600
#: What the Maker's values hold, as an encoder would declare it.
EXPECT = (TensorSpec("speaker", "float32", (192,)),)


@dataclass
class Made:
    conditioning: Conditioning


class Maker:
    """Counts how often the cache asked for a value, and can hold it back."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: keys.ConditioningKey) -> Made:
        self.calls += 1
        await self.release.wait()
        vector = np.full(192, self.calls, np.float32)
        vector.setflags(write=False)
        return Made(Conditioning(key.encoder, key.weights_digest, key.redis_key, {"speaker": vector}))


def key_for(prefix: str, name: str = "clip") -> keys.ConditioningKey:
    return keys.conditioning(prefix, "ecapa", "d" * 64, keys.audio_sha256(name.encode()))


def make_cache(store: Store) -> TieredCache:
    return TieredCache(LocalCache(1 << 20), store, default_ttl_s=TTL, keyring=record.UNSIGNED)


@pytest_asyncio.fixture
async def shared(redis_server: LocalRedis) -> AsyncIterator[tuple[TieredCache, TieredCache]]:
    """Two workers' caches (separate L1s) on one Redis."""
    caches = tuple(make_cache(RedisStore(redis_server.url, timeout_s=0.25)) for _ in range(2))
    yield caches  # type: ignore[misc]
    for cache in caches:
        await cache.close()


async def test_tiers_answer_in_order_and_compute_runs_once(
    shared: tuple[TieredCache, TieredCache], prefix: str
) -> None:
    first, second = shared
    maker, key = Maker(), key_for(prefix)
    computed = await first.fetch(key, lambda: maker(key), CachePolicy(TTL), EXPECT)
    local = await first.fetch(key, lambda: maker(key), CachePolicy(TTL), EXPECT)
    from_redis = await second.fetch(key, lambda: maker(key), CachePolicy(TTL), EXPECT)
    assert [computed.tier, local.tier, from_redis.tier] == [
        CacheTier.COMPUTED,
        CacheTier.LOCAL,
        CacheTier.REDIS,
    ]
    assert maker.calls == 1 and computed.filled is not None and local.filled is None
    assert np.array_equal(from_redis.conditioning.tensors["speaker"], computed.conditioning.tensors["speaker"])
    assert from_redis.conditioning.encoder == "ecapa" and from_redis.conditioning.cache_key == key.redis_key


async def test_concurrent_misses_share_one_compute(shared: tuple[TieredCache, TieredCache], prefix: str) -> None:
    cache, _ = shared
    maker, key = Maker(), key_for(prefix)
    await cache.store.get(key_for(prefix, "warm-up").redis_key)  # a cluster client's first call reads the slot table
    maker.release.clear()
    waiting = [asyncio.create_task(cache.fetch(key, lambda: maker(key), CachePolicy(TTL), EXPECT)) for _ in range(8)]
    await asyncio.sleep(0.2)  # every fetch past its Redis miss and waiting on the one flight
    maker.release.set()
    results = await asyncio.gather(*waiting)
    assert maker.calls == 1 and cache.counters.coalesced == 7
    assert sum(r.joined for r in results) == 7 and len({id(r.conditioning) for r in results}) == 1


async def test_bypass_neither_reads_nor_writes(
    shared: tuple[TieredCache, TieredCache], prefix: str, redis_server: LocalRedis
) -> None:
    cache, _ = shared
    maker, key = Maker(), key_for(prefix)
    await cache.fetch(key, lambda: maker(key), CachePolicy(TTL, bypass=True), EXPECT)
    await cache.fetch(key, lambda: maker(key), CachePolicy(TTL, bypass=True), EXPECT)
    assert maker.calls == 2 and len(cache.local) == 0
    assert raw_client(redis_server.url).exists(key.redis_key) == 0


async def test_pin_and_unpin(shared: tuple[TieredCache, TieredCache], prefix: str, redis_server: LocalRedis) -> None:
    cache, _ = shared
    raw = raw_client(redis_server.url)
    maker, key = Maker(), key_for(prefix)
    await cache.fetch(key, lambda: maker(key), CachePolicy(TTL), EXPECT)
    assert 0 < raw.ttl(key.redis_key) <= TTL
    await cache.fetch(key, lambda: maker(key), CachePolicy(TTL, pin=True), EXPECT)  # an L1 hit that asks for a pin
    assert raw.ttl(key.redis_key) == -1
    await cache.unpin(key.redis_key)
    assert 0 < raw.ttl(key.redis_key) <= TTL and maker.calls == 1


async def test_corrupt_value_is_counted_deleted_and_recomputed(
    shared: tuple[TieredCache, TieredCache], prefix: str, redis_server: LocalRedis
) -> None:
    first, second = shared
    raw = raw_client(redis_server.url)
    maker, key = Maker(), key_for(prefix)
    await first.fetch(key, lambda: maker(key), CachePolicy(TTL), EXPECT)
    value = bytearray(raw.get(key.redis_key) or b"")
    value[-10] ^= 0xFF
    raw.set(key.redis_key, bytes(value))
    again = await second.fetch(key, lambda: maker(key), CachePolicy(TTL), EXPECT)
    assert again.tier is CacheTier.COMPUTED and maker.calls == 2
    assert second.counters.corrupt_entries == 1


async def test_without_a_store_it_is_an_l1_cache_that_never_fails(prefix: str) -> None:
    cache = make_cache(NoStore())
    maker, key = Maker(), key_for(prefix)
    try:
        assert (
            await cache.fetch(key, lambda: maker(key), CachePolicy(TTL, pin=True), EXPECT)
        ).tier is CacheTier.COMPUTED
        assert (await cache.fetch(key, lambda: maker(key), CachePolicy(TTL), EXPECT)).tier is CacheTier.LOCAL
        await cache.unpin(key.redis_key)
        assert await cache.count_shared_entries() == -1 and not cache.shared_available and maker.calls == 1
    finally:
        await cache.close()
