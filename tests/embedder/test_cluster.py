"""Redis Cluster specifics (issue 12): redirects, a killed master, the slot of a clip's keys.

The rest of the Embedder suite already runs on a cluster (tests/embedder/conftest.py); these
tests each start their own 3 + 3 cluster on loopback, because they move slots or kill nodes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from services.common.redis_client import cluster_seeds, is_cluster_url
from services.common.redis_cluster import LocalCluster
from services.common.redis_server import CONFIG_DIR, LocalRedis
from services.embedder.cache import keys
from services.embedder.cache.redis_store import RedisStore
from services.embedder.cache.store import StoreAuthError, StoreUnavailable
from services.embedder.cache.tiered import CacheTier
from services.embedder.core import Embedder
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from tests.conftest import CountingEncoder, make_core, raw_client


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(node_timeout_ms=1000) as own:
        yield own


def node_client(node: LocalRedis) -> redis.Redis:
    return redis.Redis(port=node.port, socket_timeout=2)


def node_id(node: LocalRedis) -> str:
    with node_client(node) as client:
        return client.execute_command("CLUSTER MYID").decode()


async def hit_tier(core: Embedder, clip: bytes, key: str) -> CacheTier:
    """The tier that answers `clip` (cached under `key`) once this process's L1 has forgotten it."""
    core.cache.local.discard(key)
    return (await core.embed(audio=clip)).tier


def test_cluster_urls() -> None:
    assert is_cluster_url("redis+cluster://a:1") and is_cluster_url("rediss+cluster://a:1")
    assert not is_cluster_url("redis://a:1/0")
    seed, seeds = cluster_seeds("redis+cluster://user:pw@10.0.0.1:7000,10.0.0.2:7001")
    assert seed == "redis://user:pw@10.0.0.1:7000" and seeds == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    with pytest.raises(ValueError, match="host:port"):
        cluster_seeds("redis+cluster://10.0.0.1")
    with pytest.raises(ValueError, match="database 0"):
        cluster_seeds("redis+cluster://10.0.0.1:7000/2")


def test_a_clips_entries_share_one_slot_and_clips_spread() -> None:
    """Every entry of one clip (any encoder, weights or tenant scope) hashes to one slot, where
    a multi-key command over them is valid; different clips spread over the slots."""
    digest = keys.content_digest(b"clip")
    entries = [
        keys.conditioning("voxcache", "ecapa", "a" * 64, digest).redis_key,
        keys.conditioning("voxcache", "indextts2", "b" * 64, digest).redis_key,
        keys.conditioning(keys.scope("voxcache", "acme"), "ecapa", "a" * 64, digest).redis_key,
    ]
    assert len({key_slot(key.encode()) for key in entries}) == 1
    others = [keys.conditioning("voxcache", "ecapa", "a" * 64, keys.content_digest(bytes([i]))) for i in range(64)]
    assert len({key_slot(key.redis_key.encode()) for key in others}) > 32


async def test_moved_and_ask_are_followed(
    cluster: LocalCluster, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    """The clip's slot is migrated to another master while the Embedder runs: mid-migration
    the old master answers ASK, afterwards MOVED; both are followed and still hit."""
    core = make_core(encoder, cluster.url, "move")
    try:
        first = await core.embed(audio=speech["wav"])
        key = first.conditioning.cache_key
        assert await hit_tier(core, speech["wav"], key) is CacheTier.REDIS
        source = cluster.master_of(key)
        target = next(n for n in cluster.running() if n is not source and cluster.is_master(n))
        with node_client(source) as src, node_client(target) as dst:
            slot = int(src.execute_command("CLUSTER KEYSLOT", key))
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", node_id(source))
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", node_id(target))
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", key)
            assert await hit_tier(core, speech["wav"], key) is CacheTier.REDIS  # ASK -> target
            for node in cluster.running():
                if cluster.is_master(node):
                    with node_client(node) as each:
                        each.execute_command("CLUSTER SETSLOT", slot, "NODE", node_id(target))
        cluster.wait_ready()
        assert cluster.master_of(key) is target
        assert await hit_tier(core, speech["wav"], key) is CacheTier.REDIS  # MOVED -> target
        assert encoder.calls == 1 and core.stats.redis_errors == 0
    finally:
        await core.close()


def clip_elsewhere(
    cluster: LocalCluster, master: LocalRedis, encoder: CountingEncoder, prefix: str
) -> tuple[bytes, str]:
    """A clip, and its key, whose entry another master than `master` serves."""
    for sentence in SENTENCES[1:]:
        for voice in ("en-us", "en-gb", "en-us+f3"):
            clip = encode(*fit_duration_pair(espeak(sentence, voice=voice), 2.0))
            key = keys.conditioning(prefix, encoder.name, encoder.weights_digest, keys.content_digest(clip)).redis_key
            if cluster.master_of(key) is not master:
                return clip, key
    raise AssertionError("every clip tried hashes to one master")


def fit_duration_pair(spoken: tuple[Any, int], seconds: float) -> tuple[Any, int]:
    samples, rate = spoken
    return fit_duration(samples, rate, seconds), rate


async def test_killed_master_fails_open_for_its_slots_then_its_replica_serves_without_a_restart(
    cluster: LocalCluster, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    """While a master is dead its slots are served by the model and the other masters' slots
    still hit Redis (a breaker per master); once its replica is promoted its slots hit again."""
    core = make_core(encoder, cluster.url, "failover", retry_s=3.0)
    try:
        key = (await core.embed(audio=speech["wav"])).conditioning.cache_key
        master = cluster.master_of(key)
        elsewhere, elsewhere_key = clip_elsewhere(cluster, master, encoder, "failover")
        await core.embed(audio=elsewhere)
        assert await hit_tier(core, speech["wav"], key) is CacheTier.REDIS
        cluster.wait_replicated(master)

        master.kill()
        errors = core.stats.redis_errors
        lost = await asyncio.wait_for(hit_tier(core, speech["wav"], key), 20)  # served: fail open
        assert lost is CacheTier.COMPUTED and core.stats.redis_errors > errors and not core.cache.shared_available
        # Within the 3 s the dead master's slots are skipped, another master's slot still hits.
        assert await asyncio.wait_for(hit_tier(core, elsewhere, elsewhere_key), 20) is CacheTier.REDIS

        deadline = time.monotonic() + 30  # node timeout 1 s + election + one 3 s retry interval
        while (tier := await hit_tier(core, speech["wav"], key)) is not CacheTier.REDIS:
            assert time.monotonic() < deadline, f"no Redis hit 30 s after the master died (last: {tier})"
            await asyncio.sleep(0.2)
        assert cluster.master_of(key) is not master  # its replica serves the slot now
        assert core.cache.shared_available
    finally:
        await core.close()


async def test_hits_alone_find_the_promoted_replica(cluster: LocalCluster) -> None:
    """Only reads, as a worker serving nothing but hits sends: no write or other command is
    there to refresh the slot table, so the store's own reaction to the lost master must."""
    store = RedisStore(cluster.url, timeout_s=0.25, retry_interval_s=0.1)
    key = keys.conditioning("reads", "ecapa", "a" * 64, keys.content_digest(b"clip")).redis_key
    try:
        await store.put(key, b"entry", None)
        master = cluster.master_of(key)
        cluster.wait_replicated(master)
        assert await store.get(key) == b"entry"

        master.kill()
        with pytest.raises(StoreUnavailable):
            await store.get(key)
        deadline = time.monotonic() + 30
        while True:
            try:
                if await store.get(key) == b"entry":
                    break
            except StoreUnavailable:
                pass
            assert time.monotonic() < deadline, "hits never reached the promoted replica"
            await asyncio.sleep(0.1)
        assert cluster.master_of(key) is not master and store.available
    finally:
        await store.close()


async def test_dbsize_counts_the_keys_of_every_master(redis_cluster: LocalCluster) -> None:
    """GetStats' redis_entries: without naming the masters redis-py would ask one node only."""
    raw = raw_client(redis_cluster.url)
    for i in range(30):
        raw.set(f"count:{{{i}}}", b"x", ex=60)
    masters = [node for node in redis_cluster.running() if redis_cluster.is_master(node)]
    per_master = []
    for node in masters:
        with node_client(node) as client:
            per_master.append(int(client.dbsize()))
    store = RedisStore(redis_cluster.url)
    try:
        assert len(masters) == 3 and min(per_master) > 0
        assert await store.dbsize() == sum(per_master)
    finally:
        await store.close()
        raw.close()


def embedder_rule(conf: str) -> list[str]:
    """The embedder user's rule in one of deploy/redis's users files, as ACL SETUSER arguments."""
    line = next(line for line in (CONFIG_DIR / conf).read_text().splitlines() if line.startswith("user embedder "))
    return line.split()[2:]


@pytest.mark.parametrize(
    ("conf", "password", "refusal"),
    [
        ("users-cluster.conf", "right-secret", None),
        ("users.conf", "right-secret", r"\+cluster\|slots \+command"),  # the single server's rule
        ("users-cluster.conf", "wrong", "credentials"),
    ],
)
async def test_the_cluster_acl_user(redis_cluster: LocalCluster, conf: str, password: str, refusal: str | None) -> None:
    """As the ACL user of deploy/redis/users-cluster.conf the store works; with the single
    server's rule or a wrong password the Embedder refuses to start, saying why."""
    for node in redis_cluster.running():
        with node_client(node) as client:
            client.execute_command("ACL", "SETUSER", "embedder", "reset", ">right-secret", *embedder_rule(conf))
    url = redis_cluster.url.replace("redis+cluster://", "redis+cluster://embedder@")
    store = RedisStore(url, password=password)
    try:
        if refusal is not None:
            with pytest.raises(StoreAuthError, match=refusal):
                await store.check("voxcache")
            return
        await store.check("voxcache")
        key = keys.conditioning("voxcache", "ecapa", "a" * 64, keys.content_digest(b"acl")).redis_key
        await store.put(key, b"entry", 60)
        assert await store.get(key) == b"entry" and await store.dbsize() >= 1
        await store.delete(key)
    finally:
        await store.close()
        for node in redis_cluster.running():
            with node_client(node) as client:
                client.execute_command("ACL", "DELUSER", "embedder")
