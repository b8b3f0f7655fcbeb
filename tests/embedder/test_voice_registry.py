"""Both VoiceRegistry implementations keep the same contract; Redis also survives its own outage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from services.common.errors import AlreadyExists, Unavailable
from services.common.redis_server import LocalRedis
from services.embedder.cache.redis_store import RedisStore
from services.embedder.voices import MemoryVoiceRegistry, RedisVoiceRegistry, Voice, VoiceRegistry


def voice(voice_id: str, digest: str = "a" * 64) -> Voice:
    return Voice(voice_id=voice_id, audio_sha256=digest, duration_s=2.0, created_unix_ms=1, pinned={"ecapa": "k1"})


@pytest_asyncio.fixture(params=["memory", "redis"])
async def registry(
    request: pytest.FixtureRequest, redis_server: LocalRedis, prefix: str
) -> AsyncIterator[VoiceRegistry]:
    if request.param == "memory":
        yield MemoryVoiceRegistry()
        return
    store = RedisStore(redis_server.url, timeout_s=0.25)
    yield RedisVoiceRegistry(store, prefix=prefix, trust_s=0.0)
    await store.close()


async def test_save_find_list_remove(registry: VoiceRegistry) -> None:
    assert await registry.find("amy") is None
    await registry.save(voice("amy"), b"AUDIO", overwrite=False)
    await registry.save(voice("bob", "b" * 64), b"OTHER", overwrite=False)
    found = await registry.find("amy")
    assert found is not None and found.pinned == {"ecapa": "k1"}
    assert [v.voice_id for v in await registry.all()] == ["amy", "bob"]
    assert await registry.audio(found) == b"AUDIO"
    await registry.remove("amy")
    assert await registry.find("amy") is None and [v.voice_id for v in await registry.all()] == ["bob"]


async def test_a_taken_name_needs_overwrite(registry: VoiceRegistry) -> None:
    await registry.save(voice("amy"), b"AUDIO", overwrite=False)
    with pytest.raises(AlreadyExists):
        await registry.save(voice("amy", "c" * 64), b"NEW", overwrite=False)
    await registry.save(voice("amy", "c" * 64), b"NEW", overwrite=True)
    replaced = await registry.find("amy")
    assert replaced is not None and await registry.audio(replaced) == b"NEW"


async def test_pins_update_and_audio_can_be_dropped(registry: VoiceRegistry) -> None:
    amy = voice("amy")
    await registry.save(amy, b"AUDIO", overwrite=False)
    amy.pinned["indextts2"] = "k2"
    await registry.update(amy)
    stored = await registry.find("amy")
    assert stored is not None and stored.pinned == {"ecapa": "k1", "indextts2": "k2"}
    await registry.drop_audio(amy.audio_sha256)
    with pytest.raises(Unavailable, match="missing"):
        await registry.audio(amy)


async def test_redis_registry_serves_a_seen_voice_through_an_outage(prefix: str) -> None:
    with LocalRedis() as own:
        store = RedisStore(own.url, timeout_s=0.25, retry_interval_s=0.1)
        registry = RedisVoiceRegistry(store, prefix=prefix, trust_s=0.0)
        await registry.save(voice("amy"), b"AUDIO", overwrite=False)
        own.close()
        seen = await registry.resolve("amy")  # trust_s=0: Redis is asked, fails, the last copy answers
        assert seen is not None and seen.voice_id == "amy"
        with pytest.raises(Unavailable, match="not known to this Embedder"):
            await registry.resolve("never-seen")
        with pytest.raises(Unavailable):
            await registry.find("amy")
        await store.close()


async def test_recent_is_what_resolve_answers_without_asking_redis(redis_server: LocalRedis, prefix: str) -> None:
    store = RedisStore(redis_server.url, timeout_s=0.25)
    writer = RedisVoiceRegistry(store, prefix=prefix, trust_s=60.0)
    reader = RedisVoiceRegistry(store, prefix=prefix, trust_s=60.0)
    untrusting = RedisVoiceRegistry(store, prefix=prefix, trust_s=0.0)
    await writer.save(voice("amy"), b"AUDIO", overwrite=False)
    assert reader.recent("amy") is None  # never seen by this worker: only `resolve` can say
    resolved = await reader.resolve("amy")
    assert resolved is not None and reader.recent("amy") is resolved
    assert await untrusting.resolve("amy") is not None
    assert untrusting.recent("amy") is None  # seen, but trusted for 0 s: Redis must be asked
    await writer.remove("amy")
    # Within trust_s the local copy still answers, as `resolve` would; no Redis round trip tells otherwise.
    assert reader.recent("amy") is resolved and await reader.resolve("amy") is resolved
    assert await untrusting.resolve("amy") is None and untrusting.recent("amy") is None
    await store.close()


async def test_memory_registry_recent_is_its_own_voice() -> None:
    registry = MemoryVoiceRegistry()
    assert registry.recent("amy") is None
    await registry.save(voice("amy"), b"AUDIO", overwrite=False)
    assert registry.recent("amy") is await registry.resolve("amy")
    await registry.remove("amy")
    assert registry.recent("amy") is None
