"""RedisStore.get: one command written on a pooled connection, each reply read by its own caller."""

from __future__ import annotations

import asyncio

import pytest

from services.common.redis_server import LocalRedis
from services.embedder.cache.redis_store import RedisStore
from tests.conftest import raw_client


async def test_get_answers_values_and_absent_keys_on_reused_connections(redis_server: LocalRedis) -> None:
    raw = raw_client(redis_server.url)
    raw.set("get:ttl", b"expiring", ex=50)
    raw.set("get:bin", bytes(range(256)) * 4)
    raw.set("get:ütf", b"unicode key")
    # A generous timeout: this test is about which reply each caller reads, and the 32 GETs at once
    # below, each on a new connection, outran the service's 250 ms on a loaded CI machine (twice in
    # four runs; in one the reply had arrived and the timeout fired first, the loop having stalled).
    store = RedisStore(redis_server.url, timeout_s=5.0)
    try:
        for _ in range(3):  # the same pooled connection again and again: no reply may be left behind
            assert await store.get("get:ttl") == b"expiring"
            assert await store.get("get:bin") == bytes(range(256)) * 4
            assert await store.get("get:ütf") == b"unicode key"
            assert await store.get("get:absent") is None
        assert 40 <= raw.ttl("get:ttl") <= 50  # a read never touches the TTL
        # Many at once: each caller gets its own key's value, whatever connection it was lent.
        keys = [f"get:many:{i}" for i in range(32)]
        for key in keys:
            raw.set(key, key.encode())
        values = await asyncio.gather(*(store.get(key) for key in keys))
        assert values == [key.encode() for key in keys]
    finally:
        await store.close()
        raw.close()


async def test_a_get_on_a_key_of_another_type_is_a_miss_and_the_key_is_replaced(redis_server: LocalRedis) -> None:
    raw = raw_client(redis_server.url)
    raw.hset("get:hash", "f", "v")
    store = RedisStore(redis_server.url, timeout_s=0.25)
    try:
        assert await store.get("get:hash") is None
        assert raw.exists("get:hash") == 0
        raw.set("get:after", b"ok")
        assert await store.get("get:after") == b"ok"  # the error reply was read, not left for the next caller
    finally:
        await store.close()
        raw.close()


@pytest.mark.parametrize("cancel_after_s", [0.0, 0.001])
async def test_a_cancelled_get_leaves_no_reply_for_the_next_caller(
    redis_server: LocalRedis, cancel_after_s: float
) -> None:
    raw = raw_client(redis_server.url)
    raw.set("get:first", b"first")
    raw.set("get:second", b"second")
    store = RedisStore(redis_server.url, timeout_s=0.25)
    try:
        task = asyncio.create_task(store.get("get:first"))
        await asyncio.sleep(cancel_after_s)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for _ in range(3):
            assert await store.get("get:second") == b"second"
    finally:
        await store.close()
        raw.close()
