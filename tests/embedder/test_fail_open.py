"""Redis trouble never fails a request the model can serve, and recovery needs no restart."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import redis

from services.common.redis_server import LocalRedis, free_port
from services.embedder.cache.redis_store import RedisStore
from services.embedder.cache.store import StoreAuthError, StoreUnavailable
from services.embedder.cache.tiered import CacheTier
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from tests.conftest import CountingEncoder, make_core, raw_client


async def test_redis_killed_mid_test_then_restarted(
    encoder: CountingEncoder, speech: dict[str, Any], other_speech: bytes
) -> None:
    own = LocalRedis().start()
    core = make_core(encoder, own.url, "failopen", retry_s=0.2)
    try:
        cached = await core.embed(audio=speech["wav"])
        assert core.cache.shared_available

        own.stop()  # Redis dies
        hit = await asyncio.wait_for(core.embed(audio=speech["wav"]), 20)  # L1 still answers
        miss = await asyncio.wait_for(core.embed(audio=other_speech), 20)  # the model answers, the write fails open
        assert hit.tier is CacheTier.LOCAL and miss.tier is CacheTier.COMPUTED
        assert not core.cache.shared_available and core.stats.redis_errors >= 1
        core.cache.local.discard(cached.conditioning.cache_key)
        again = await core.embed(audio=speech["wav"])  # neither L1 nor Redis: compute
        assert again.tier is CacheTier.COMPUTED
        assert again.conditioning.tensors["speaker"].tobytes() == cached.conditioning.tensors["speaker"].tobytes()

        own.start()  # same port, empty (a throwaway folder)
        await asyncio.sleep(0.3)  # past the retry interval
        # A clip never seen before (the two above wait in the write-back queue, test_write_back.py).
        samples, rate = espeak(SENTENCES[2])
        new_clip = encode(fit_duration(samples, rate, 2.0), rate)
        stored = await core.embed(audio=new_clip)  # computes and writes to the new Redis
        assert stored.tier is CacheTier.COMPUTED and core.cache.shared_available
        assert redis.Redis.from_url(own.url).exists(stored.conditioning.cache_key) == 1
        core.cache.local.discard(stored.conditioning.cache_key)
        assert (await core.embed(audio=new_clip)).tier is CacheTier.REDIS
    finally:
        await core.close()
        own.close()


async def test_hung_redis_costs_one_timeout_then_is_skipped(encoder: CountingEncoder, speech: dict[str, Any]) -> None:
    """A server that accepts connections but never answers: requests are still served, and
    while Redis is marked down no further attempt (and no further timeout) is made."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    core = make_core(encoder, f"redis://127.0.0.1:{port}/0", "hung", retry_s=30)
    try:
        first = await asyncio.wait_for(core.embed(audio=speech["wav"]), 20)  # liveness, not speed
        assert first.tier is CacheTier.COMPUTED and not core.cache.shared_available
        attempts = core.stats.redis_errors
        assert attempts >= 1
        core.cache.local.discard(first.conditioning.cache_key)
        second = await asyncio.wait_for(core.embed(audio=speech["wav"]), 20)
        assert second.tier is CacheTier.COMPUTED and core.stats.redis_errors == attempts
    finally:
        await core.close()
        listener.close()


async def test_voice_lookup_falls_back_to_last_known_record(encoder: CountingEncoder, speech: dict[str, Any]) -> None:
    """With the local trust window at zero every lookup goes to Redis, so once Redis is gone
    only the last record seen can answer: that fallback, not the voice cache, serves dana."""
    own = LocalRedis().start()
    core = make_core(encoder, own.url, "voices", retry_s=0.2, voice_cache_s=0.0)
    try:
        await core.register_voice("dana", speech["wav"])
        own.stop()
        answer = await core.embed(voice_id="dana")
        assert answer.cache_hit and not core.cache.shared_available
        with pytest.raises(Exception, match="unreachable and voice 'erin' is not known"):
            await core.embed(voice_id="erin")
    finally:
        await core.close()
        own.close()


async def test_wrong_password_is_a_configuration_error(single_redis: LocalRedis) -> None:
    """Single server only: a cluster's ACL users are set node by node (tests/test_redis_acl.py
    covers the shipped users file); the check itself is the same code for both."""
    redis_server = single_redis
    client = raw_client(redis_server.url)
    client.execute_command("ACL", "SETUSER", "embedder", "on", ">right-secret", "~*", "+@all")
    try:
        ok = RedisStore(f"redis://embedder@127.0.0.1:{redis_server.port}/0", password="right-secret")
        await ok.check("voxcache")
        assert await ok.dbsize() >= 0
        await ok.close()
        wrong = RedisStore(f"redis://embedder:wrong@127.0.0.1:{redis_server.port}/0")
        with pytest.raises(StoreAuthError, match="credentials"):
            await wrong.check("voxcache")
        await wrong.close()
    finally:
        client.execute_command("ACL", "DELUSER", "embedder")


async def test_unreachable_redis_at_start_is_not_fatal() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable):
        await store.check("voxcache")
    assert not store.available
    await store.close()


#: The restart tests' Redis timeout. A connection that outlived a restart fails at once (reset by
#: the new server), so what they test does not wait on it; it bounds the new connections made
#: after the restart, and 0.25 s once timed out making sixteen of them on a loaded CI machine.
RESTART_TIMEOUT_S = 2.0


async def test_a_redis_restart_costs_one_failure_not_one_per_pooled_connection() -> None:
    """Found by the soak bench: idle pooled connections outlive a Redis restart and each one
    failed its next command, minutes later, when a burst first needed it (a voice registration
    then answered UNAVAILABLE with Redis up). The first failure now closes the idle ones."""
    own = LocalRedis().start()
    errors: list[None] = []
    store = RedisStore(own.url, timeout_s=RESTART_TIMEOUT_S, retry_interval_s=0.1, on_error=lambda: errors.append(None))
    try:
        await store.put("k", b"v", 60)
        await asyncio.gather(*(store.hget("voices", "x") for _ in range(8)))  # a burst: several pooled connections
        own.stop()
        own.start()  # back on the same port, before anyone noticed it was gone
        with pytest.raises(StoreUnavailable):
            await store.hget("voices", "x")  # the one request a restart costs
        await asyncio.sleep(0.15)
        outcomes = await asyncio.gather(*(store.hget("voices", "x") for _ in range(8)), return_exceptions=True)
        assert outcomes == [None] * 8 and len(errors) == 1
    finally:
        await store.close()
        own.close()


async def test_a_redis_restart_seen_by_a_hits_get_costs_no_request() -> None:
    """A hit's GET runs on the store's own connections (get_connections.py): one that sat idle
    through a restart fails, the GET is sent once more on a new connection and answers, and the
    pool's idle connections are closed too, so the commands after it do not fail either."""
    own = LocalRedis().start()
    errors: list[None] = []
    store = RedisStore(own.url, timeout_s=RESTART_TIMEOUT_S, retry_interval_s=0.1, on_error=lambda: errors.append(None))
    try:
        await store.put("k", b"v", 60)
        await asyncio.gather(*(store.get("k") for _ in range(8)))  # several GET connections
        await asyncio.gather(*(store.hget("voices", "x") for _ in range(8)))  # and pooled ones
        own.stop()
        own.start()  # an empty Redis on the same port: the value is gone, the connections dead
        assert await store.get("k") is None
        outcomes = await asyncio.gather(
            *(store.get("k") for _ in range(8)), *(store.hget("voices", "x") for _ in range(8)), return_exceptions=True
        )
        assert outcomes == [None] * 16 and errors == []
    finally:
        await store.close()
        own.close()
