"""RedisStore.get_sliding: two commands on one pooled connection, each reply read by its own caller."""

from __future__ import annotations

import asyncio

from services.common.redis_server import LocalRedis
from services.embedder.cache.redis_store import RedisStore
from tests.conftest import raw_client


async def test_get_sliding_answers_the_value_slides_ttls_and_leaves_pins_alone(redis_server: LocalRedis) -> None:
    raw = raw_client(redis_server.url)
    raw.set("slide:ttl", b"expiring", ex=50)
    raw.set("slide:pinned", b"pinned")
    store = RedisStore(redis_server.url, timeout_s=0.25)
    try:
        for _ in range(3):  # the same pooled connection again and again: no reply may be left behind
            assert await store.get_sliding("slide:ttl", 600) == b"expiring"
            assert await store.get("slide:pinned") == b"pinned"
            assert await store.get_sliding("slide:pinned", 600) == b"pinned"
            assert await store.get_sliding("slide:absent", 600) is None
        assert 590 <= raw.ttl("slide:ttl") <= 600 and raw.ttl("slide:pinned") == -1
        # Many at once: each caller gets its own key's value, whatever connection it was lent.
        keys = [f"slide:many:{i}" for i in range(32)]
        for key in keys:
            raw.set(key, key.encode(), ex=50)
        values = await asyncio.gather(*(store.get_sliding(key, 600) for key in keys))
        assert values == [key.encode() for key in keys]
    finally:
        await store.close()
        raw.close()
