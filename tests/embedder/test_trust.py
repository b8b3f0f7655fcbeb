"""What the Embedder accepts from Redis (issue 10, "Trust"): a hit is used only if it is
signed by one of our keys and holds exactly the tensors its encoder declares; anything else
is counted, deleted and recomputed, and the good value replaces it.

Bad values are written straight into a real redis-server with redis-py, as anyone who can
reach Redis could.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import redis

from services.common.redis_server import LocalRedis
from services.embedder import server as embedder_server
from services.embedder.cache import keys, record
from services.embedder.cache.tiered import CacheTier
from services.embedder.conditioning import TensorMismatch, TensorSpec
from services.embedder.core import Embedder
from services.embedder.encoders.storage import Float16Storage
from services.embedder.settings import EmbedderSettings
from tests.conftest import CountingEncoder, make_core, raw_client

KEYS = "k2:the-new-secret-0123456789,k1:the-old-secret-0123456789"
KEYRING = record.Keyring.parse(KEYS)


@pytest.fixture
def raw(redis_server: LocalRedis) -> redis.Redis:
    return raw_client(redis_server.url)


@pytest_asyncio.fixture
async def signed(encoder: CountingEncoder, redis_server: LocalRedis, prefix: str) -> AsyncIterator[Embedder]:
    embedder = make_core(encoder, redis_server.url, prefix, cache_hmac_keys=KEYS)
    yield embedder
    await embedder.close()


def vector(result: Any) -> np.ndarray:
    return result.conditioning.tensors["speaker"]


Bad = Callable[[str, np.ndarray], bytes]

BAD_VALUES: dict[str, Bad] = {
    # Well formed, key id k1, hashed right, but with a secret that is not ours: a forgery.
    "forged": lambda key, v: record.encode(key, {"speaker": -v}, record.Keyring.parse("k1:attacker-0123456789abcdef")),
    "unsigned": lambda key, v: record.encode(key, {"speaker": -v}, record.UNSIGNED),
    "nan": lambda key, v: record.encode(key, {"speaker": np.full_like(v, np.nan)}, KEYRING),
    "infinite": lambda key, v: record.encode(key, {"speaker": np.full_like(v, np.inf)}, KEYRING),
    "mis-shaped": lambda key, v: record.encode(key, {"speaker": v.reshape(1, 192)}, KEYRING),
    "truncated": lambda key, v: record.encode(key, {"speaker": v[:96]}, KEYRING),
    "mis-named": lambda key, v: record.encode(key, {"spk": v}, KEYRING),
    "extra tensor": lambda key, v: record.encode(key, {"speaker": v, "style": v}, KEYRING),
    "float16": lambda key, v: record.encode(key, {"speaker": v.astype(np.float16)}, KEYRING),
    "version 1": lambda key, v: b"VXCR\x01" + record.encode(key, {"speaker": v}, KEYRING)[5:],
}


@pytest.mark.parametrize("bad", BAD_VALUES.values(), ids=BAD_VALUES.keys())
async def test_a_bad_value_in_redis_is_counted_deleted_recomputed_and_replaced(
    signed: Embedder, encoder: CountingEncoder, raw: redis.Redis, speech: dict[str, Any], bad: Bad
) -> None:
    first = await signed.embed(audio=speech["wav"])
    key, genuine = first.conditioning.cache_key, raw.get(first.conditioning.cache_key)
    assert genuine is not None and genuine[6:9] == b"\x02k2"  # signed with the first key
    raw.set(key, bad(key, vector(first)), ex=3600)
    signed.cache.local.discard(key)  # another worker, or this one after L1 eviction

    again = await signed.embed(audio=speech["wav"])
    assert again.tier is CacheTier.COMPUTED and encoder.calls == 2
    assert vector(again).tobytes() == vector(first).tobytes()
    assert signed.snapshot().corrupt_entries == 1  # GetStats' and /metrics' corrupt_entries
    assert raw.get(key) == genuine  # the good value replaced the bad one
    signed.cache.local.discard(key)
    assert (await signed.embed(audio=speech["wav"])).tier is CacheTier.REDIS


async def test_values_signed_with_an_older_key_are_still_hits(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    """Rotation: workers on the old key and workers on the new list share one cache."""
    old = make_core(encoder, redis_server.url, prefix, cache_hmac_keys="k1:the-old-secret-0123456789")
    new = make_core(encoder, redis_server.url, prefix, cache_hmac_keys=KEYS)
    try:
        written = await old.embed(audio=speech["wav"])
        assert raw.get(written.conditioning.cache_key)[6:9] == b"\x02k1"  # type: ignore[index]
        read = await new.embed(audio=speech["wav"])
        assert read.tier is CacheTier.REDIS and encoder.calls == 1 and new.snapshot().corrupt_entries == 0
    finally:
        await old.close()
        await new.close()


async def test_float16_storage_declares_float16_and_its_hits_pass(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    half = Float16Storage(encoder)
    assert half.tensors == (TensorSpec("speaker", "float16", (192,)),)
    workers = [make_core(half, redis_server.url, prefix, cache_hmac_keys=KEYS) for _ in range(2)]
    try:
        computed = await workers[0].embed(audio=speech["wav"])
        hit = await workers[1].embed(audio=speech["wav"])
        assert (computed.tier, hit.tier) == (CacheTier.COMPUTED, CacheTier.REDIS)
        assert vector(hit).dtype == np.float16 and workers[1].snapshot().corrupt_entries == 0
    finally:
        for worker in workers:
            await worker.close()


async def test_an_encoder_that_breaks_its_declaration_stores_nothing(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    """Caught at compute time, or every later hit would be rejected and recomputed."""
    encoder.tensors = (TensorSpec("speaker", "float32", (256,)),)
    core = make_core(encoder, redis_server.url, prefix)
    try:
        with pytest.raises(TensorMismatch, match=r"speaker: shape \(192,\), expected \(256\)"):
            await core.embed(audio=speech["wav"])
        assert list(raw.scan_iter(f"{prefix}:*")) == []  # every master of a cluster
    finally:
        await core.close()


# -- start-up ---------------------------------------------------------------------------------
def service_settings(redis_server: LocalRedis, prefix: str, **changes: Any) -> EmbedderSettings:
    base = replace(EmbedderSettings(), port=0, metrics_port=0, redis_url=redis_server.url, cache_prefix=prefix)
    return replace(base, **changes)


@pytest.mark.parametrize(("keys", "warned"), [("", True), (KEYS, False)], ids=["no keys", "keys"])
async def test_start_warns_when_values_are_only_checksummed(
    encoder: CountingEncoder,
    redis_server: LocalRedis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    keys: str,
    warned: bool,
) -> None:
    caplog.set_level(logging.WARNING, logger="voxcache.embedder")
    settings = service_settings(redis_server, prefix, cache_hmac_keys=keys)
    running = await embedder_server.start(settings, encoders={"ecapa": encoder})
    await running.stop()
    warnings = [r.getMessage() for r in caplog.records if "only checksummed" in r.getMessage()]
    assert bool(warnings) is warned
    if warned:
        assert "VOXCACHE_CACHE_HMAC_KEYS" in warnings[0]


async def test_malformed_keys_refuse_to_start(encoder: CountingEncoder, redis_server: LocalRedis, prefix: str) -> None:
    settings = service_settings(redis_server, prefix, cache_hmac_keys="k1:change-me")
    with pytest.raises(record.KeyringError, match="shorter than 16 bytes"):
        await embedder_server.start(settings, encoders={"ecapa": encoder})


def test_the_keys_come_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.embedder.settings import parse

    monkeypatch.setenv("VOXCACHE_CACHE_HMAC_KEYS", KEYS)
    assert parse([]).cache_hmac_keys == KEYS
    monkeypatch.setenv("VOXCACHE_EMBEDDER_CACHE_HMAC_KEYS", "k9:embedder-only-0123456789")
    assert parse([]).cache_hmac_keys == "k9:embedder-only-0123456789"  # the service's own name wins
    with pytest.raises(SystemExit):
        parse(["--cache-hmac-keys", KEYS])  # never a flag: it would show in `ps`


# -- a Redis key of another type ----------------------------------------------------------------
async def test_a_conditioning_key_of_another_type_is_replaced_without_skipping_redis(
    core: Embedder, encoder: CountingEncoder, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    first = await core.embed(audio=speech["wav"])
    key = first.conditioning.cache_key
    raw.delete(key)
    raw.rpush(key, b"someone else's list")
    core.cache.local.discard(key)

    again = await core.embed(audio=speech["wav"])
    assert again.tier is CacheTier.COMPUTED and encoder.calls == 2
    assert core.snapshot().corrupt_entries == 1 and core.stats.redis_errors == 0
    assert core.cache.shared_available  # not an outage: Redis is not skipped
    assert raw.type(key) == b"string" and raw.ttl(key) > 0  # the entry replaced the list
    core.cache.local.discard(key)
    assert (await core.embed(audio=speech["wav"])).tier is CacheTier.REDIS


async def test_a_voices_key_of_another_type_is_replaced(
    core: Embedder, raw: redis.Redis, prefix: str, speech: dict[str, Any]
) -> None:
    raw.set(keys.voices(prefix), b"not a hash")
    assert [v.voice_id for v in await core.list_voices()] == []  # HGETALL: WRONGTYPE -> deleted -> none
    await core.register_voice("ada", speech["wav"])
    assert [v.voice_id for v in await core.list_voices()] == ["ada"]
    assert raw.type(keys.voices(prefix)) == b"hash"
    assert core.snapshot().corrupt_entries == 1 and core.stats.redis_errors == 0 and core.cache.shared_available
