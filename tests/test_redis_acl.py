"""Redis as compose.yaml and `voxcache up` run it: one set of settings (deploy/redis), the
default user disabled, and an `embedder` ACL user allowed only what the Embedder sends.

The Redis here is started exactly as `voxcache up` starts it (LocalRedis(acl=True):
deploy/redis/start.sh, a random password); the Embedder runs in-process with the ACL
user's URL and password, as the launcher and compose.yaml configure it.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from services.common.errors import Unavailable
from services.common.paths import REPO_ROOT
from services.common.redis_server import CONFIG_DIR, EMBEDDER_USER, LocalRedis, read_conf
from services.embedder import server as embedder_server
from services.embedder.cache import keys
from services.embedder.cache.record import Keyring
from services.embedder.cache.redis_store import RedisStore
from services.embedder.cache.store import StoreAuthError, StoreRefused
from services.embedder.cache.tiered import CacheTier
from services.embedder.metrics import EmbedderStats
from services.embedder.settings import EmbedderSettings
from services.launcher import REDIS_PASSWORD_VARS
from tests.conftest import CountingEncoder
from voxcache import AsyncEmbedderClient

PREFIX = "voxcache"  # the default --cache-prefix: the ACL user's keys are voxcache:*


@pytest.fixture(scope="module")
def acl_redis() -> Iterator[LocalRedis]:
    with LocalRedis(acl=True) as server:
        yield server


def as_embedder(server: LocalRedis, **kwargs: Any) -> redis.Redis:
    """A plain redis-py client logged in as the embedder user: the only user that can log in."""
    return redis.Redis(port=server.port, username=EMBEDDER_USER, password=server.password, protocol=2, **kwargs)


def embedder_settings(server: LocalRedis, password: str | None) -> EmbedderSettings:
    settings = replace(EmbedderSettings(), port=0, metrics_port=0, redis_retry_s=30)
    return replace(settings, redis_url=server.url, redis_password=password or "")


async def test_embedder_works_as_the_acl_user(
    acl_redis: LocalRedis, encoder: CountingEncoder, speech: dict[str, Any], other_speech: bytes
) -> None:
    assert acl_redis.url == f"redis://embedder@127.0.0.1:{acl_redis.port}/0"  # no secret in the URL
    running = await embedder_server.start(embedder_settings(acl_redis, acl_redis.password), encoders={"ecapa": encoder})
    try:
        async with AsyncEmbedderClient(f"127.0.0.1:{running.port}", timeout=60) as client:
            miss = await client.embed(speech["wav"])
            hit = await client.embed(speech["wav"])
            assert (miss.tier, hit.tier) == ("computed", "local") and encoder.calls == 1
            assert miss.cache_key.startswith(f"{PREFIX}:cond:ecapa:")

            stored = as_embedder(acl_redis)
            assert stored.get(miss.cache_key) is not None  # the entry is in Redis
            running.core.cache.local.discard(miss.cache_key)
            from_redis = await client.embed(speech["wav"])  # GET + EXPIRE XX, pipelined
            assert from_redis.tier == "redis" and from_redis.speaker.tobytes() == miss.speaker.tobytes()

            # The voice registry: HSETNX/HSET/HGET/HGETALL/HDEL, pinned SET, reference audio, DEL, EXPIRE.
            await client.register_voice("acl-voice", other_speech)
            await client.register_voice("acl-voice", speech["wav"], overwrite=True)
            assert (await client.embed(voice_id="acl-voice")).cache_hit
            assert [v.voice_id for v in await client.list_voices()] == ["acl-voice"]
            # SearchVoices: INCR + PUBLISH on register, SUBSCRIBE, GET + HSCAN + HLEN to load, HMGET for hits.
            found = await client.search_voices(audio=speech["wav"])
            assert [hit.voice.voice_id for hit in found.hits] == ["acl-voice"]
            await client.delete_voice("acl-voice")
            assert (await client.search_voices(audio=speech["wav"])).hits == []

            stats = await client.stats()  # DBSIZE
        assert stats["redis_available"] is True and stats["redis_errors"] == 0  # no command was refused
        assert stats["redis_entries"] >= 2
    finally:
        await running.stop()


async def test_every_store_operation_is_permitted(acl_redis: LocalRedis) -> None:
    """Each RedisStore method, i.e. every command the Embedder can send; any NOPERM raises."""
    store = RedisStore(acl_redis.url, password=acl_redis.password, retry_interval_s=30)
    key, registry = f"{PREFIX}:acl-test:entry", f"{PREFIX}:acl-test:registry"
    try:
        await store.check(PREFIX)
        await store.put(key, b"pinned", None)
        await store.put(key, b"ignored", 60)  # SET EX NX keeps the pinned twin
        await store.slide(key, 60)
        await store.expire(key, 60)
        assert await store.get(key) == b"pinned"
        await store.delete(key)
        assert await store.hset(registry, "v", b"1", only_new=True)
        assert await store.hset(registry, "v", b"2", only_new=False)
        assert await store.hget(registry, "v") == b"2" and await store.hgetall(registry) == {b"v": b"2"}
        assert await store.hdel(registry, "v")
        assert await store.hset(registry, "w", b"3", only_new=False)
        assert await store.hmget(registry, ["w", "x"]) == [b"3", None] and await store.hlen(registry) == 1
        assert await store.hscan(registry, 0, 10) == (0, {b"w": b"3"})
        assert await store.incr(f"{PREFIX}:acl-test:version") == 1
        await store.delete(f"{PREFIX}:acl-test:version")
        await store.publish(f"{PREFIX}:voices:changed", b"announced")
        assert await store.dbsize() >= 0
        # Leases (cache/lease.py): SET NX PX, the two Lua scripts (EVALSHA, SCRIPT LOAD first), pub/sub.
        lease = keys.lease(key)
        assert await store.take_lease(lease, "me", 5000) and not await store.take_lease(lease, "you", 5000)
        assert await store.renew_lease(lease, "me", 5000) and not await store.renew_lease(lease, "you", 5000)
        pubsub = store.pubsub()
        await pubsub.subscribe(keys.lease_channel(PREFIX))
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        await store.publish(keys.lease_channel(PREFIX), key)
        assert (await pubsub.get_message(timeout=5))["data"] == key.encode()
        await pubsub.aclose()
        await store.drop_lease(lease, "you")
        assert await store.get(lease) == b"me"  # another's token deletes nothing
        await store.drop_lease(lease, "me")
        assert await store.get(lease) is None
        assert store.available
    finally:
        await store.close()


async def test_keys_outside_the_prefix_are_refused(acl_redis: LocalRedis, caplog: pytest.LogCaptureFixture) -> None:
    """A refusal is a permission problem, not an outage: Redis is not skipped for it."""
    store = RedisStore(acl_redis.url, password=acl_redis.password, retry_interval_s=30)
    try:
        with pytest.raises(StoreRefused, match=r"^Redis refused SET \(permission denied by its ACL: .*no permissions"):
            await store.put("other:key", b"x", 60)
        assert store.available
        with pytest.raises(StoreRefused, match="permission denied"):  # asked again, not "marked down; skipping"
            await store.get("other:key")
        await store.put(f"{PREFIX}:acl-test:allowed", b"x", 60)  # and the keys it may write still work
        await store.delete(f"{PREFIX}:acl-test:allowed")
    finally:
        await store.close()
    assert any("users.conf" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_embedder(acl_redis).get("other:key")


async def test_a_prefix_the_acl_user_cannot_write_stops_the_embedder_at_start(
    acl_redis: LocalRedis, encoder: CountingEncoder
) -> None:
    """With the shipped ACL (`~voxcache:*`), --cache-prefix tenant-a is refused up front, with
    the prefix and the rule to change, instead of serving with every Redis call failing."""
    settings = replace(embedder_settings(acl_redis, acl_redis.password), cache_prefix="tenant-a")
    with pytest.raises(StoreAuthError) as refused:
        await embedder_server.start(settings, encoders={"ecapa": encoder})
    message = str(refused.value)
    assert "cache prefix 'tenant-a'" in message and "deploy/redis/users.conf" in message
    assert "`~voxcache:*`" in message and "`~tenant-a:*`" in message
    assert "unreachable" not in message
    assert as_embedder(acl_redis).get(f"{PREFIX}:probe") is None  # the default prefix's probe leaves nothing


async def test_a_refusal_at_run_time_is_reported_as_a_permission_problem(
    acl_redis: LocalRedis, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    """Past the start-up probe (say the ACL changed since): Embed still serves, fail-open, and
    the registry says "permission", not "unreachable"."""
    settings = replace(embedder_settings(acl_redis, acl_redis.password), cache_prefix="tenant-a")
    stats = EmbedderStats()
    on_error, _ = embedder_server.store_counters(stats)
    store = RedisStore(acl_redis.url, password=acl_redis.password, retry_interval_s=30, on_error=on_error)
    pool = ThreadPoolExecutor(max_workers=1)
    core = embedder_server.build_core(settings, {"ecapa": encoder}, store, pool, stats, Keyring.parse(""))
    try:
        assert (await core.embed(audio=speech["wav"])).tier is CacheTier.COMPUTED
        assert (await core.embed(audio=speech["wav"])).tier is CacheTier.LOCAL
        with pytest.raises(Unavailable, match=r"refused the command, a permission problem") as refused:
            await core.register_voice("tenant-voice", speech["wav"])
        assert "unreachable" not in refused.value.message
        assert stats.redis_errors > 0 and core.cache.shared_available
    finally:
        await core.close()
        pool.shutdown()


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("CONFIG", "GET", "maxmemory"),
        ("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"),
        ("ACL", "LIST"),
        ("ACL", "SETUSER", "embedder", "+@all"),
        ("INFO",),
        ("MONITOR",),
        ("BGSAVE",),
        ("SWAPDB", "0", "1"),
        ("TTL", f"{PREFIX}:x"),
        ("SHUTDOWN",),
        ("EVAL", "return 1", "0"),
        ("MULTI",),
        ("PUBLISH", "voxcache:chan", "x"),
        ("SELECT", "1"),
        ("CLIENT", "LIST"),
        ("UNLINK", f"{PREFIX}:x"),
        ("GETEX", f"{PREFIX}:x", "EX", "10"),
        ("MEMORY", "USAGE", f"{PREFIX}:x"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_commands_the_embedder_does_not_send_are_refused(acl_redis: LocalRedis, command: tuple[str, ...]) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_embedder(acl_redis).execute_command(*command)


def test_the_default_user_is_disabled(acl_redis: LocalRedis) -> None:
    with pytest.raises(redis.exceptions.AuthenticationError, match="Authentication required"):
        redis.Redis(port=acl_redis.port, protocol=2).ping()  # no credentials: NOAUTH for everything
    for password in ("", "anything"):
        with pytest.raises(redis.exceptions.AuthenticationError, match="disabled"):
            redis.Redis(port=acl_redis.port, username="default", password=password, protocol=2).ping()


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong", "missing"])
async def test_wrong_password_stops_the_embedder_with_a_clear_error(
    acl_redis: LocalRedis, encoder: CountingEncoder, password: str | None
) -> None:
    with pytest.raises(StoreAuthError, match=r"^Redis (rejected the credentials|refused access): "):
        await embedder_server.start(embedder_settings(acl_redis, password), encoders={"ecapa": encoder})


def test_wrong_password_exits_the_process_with_a_clear_message(acl_redis: LocalRedis) -> None:
    """The real entry point: `python -m services.embedder.server` refuses to start, exit status non-zero."""
    env = {k: v for k, v in os.environ.items() if k not in REDIS_PASSWORD_VARS and not k.startswith("VOXCACHE_")}
    env["VOXCACHE_REDIS_PASSWORD"] = "wrong-password"
    command = ["--port", "0", "--metrics-port", "0", "--redis-url", acl_redis.url, "--threads", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "services.embedder.server", *command],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    refused = r"voxcache-embedder: Redis (rejected the credentials|refused access): .*invalid username-password pair"
    assert re.match(refused, last), last
    assert "wrong-password" not in result.stderr + result.stdout  # the secret is never printed


async def test_the_compose_health_check_reports_serving(acl_redis: LocalRedis, encoder: CountingEncoder) -> None:
    """deploy/healthcheck.py (the images' and compose's HEALTHCHECK) against a running Embedder."""
    running = await embedder_server.start(embedder_settings(acl_redis, acl_redis.password), encoders={"ecapa": encoder})
    try:
        env = {**os.environ, "VOXCACHE_EMBEDDER_HOST": "0.0.0.0", "VOXCACHE_EMBEDDER_PORT": str(running.port)}
        probe = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO_ROOT / "deploy" / "healthcheck.py"), "embedder",
            env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await probe.communicate()
        assert probe.returncode == 0, output
        assert output.decode().strip() == f"voxcache.v1.Embedder at 127.0.0.1:{running.port}: SERVING"
    finally:
        await running.stop()
    down = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO_ROOT / "deploy" / "healthcheck.py"), "embedder",
        env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await down.communicate()
    assert down.returncode == 1 and b"UNAVAILABLE" in output, output  # stopped: unhealthy


# -- one configuration: compose.yaml and LocalRedis read the same deploy/redis files -----------
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())


def to_bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)\s*([kmg]?b?)", size.strip().lower()).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}[unit]


def test_compose_and_local_redis_use_the_same_settings() -> None:
    redis_service = compose()["services"]["redis"]
    mounts = {}
    for volume in redis_service["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = (REPO_ROOT / source).resolve()
    entrypoint = redis_service["entrypoint"]
    script = Path(entrypoint[-1])
    assert mounts[str(script.parent)] == CONFIG_DIR == REPO_ROOT / "deploy" / "redis"
    assert script.name == "start.sh" and redis_service["image"].startswith("redis:7")
    # `voxcache up` starts the same script from the same directory.
    local, plain = LocalRedis(acl=True), LocalRedis()
    try:
        assert local.command[:2] == ["sh", str(CONFIG_DIR / "start.sh")]
        assert plain.command[:2] == [plain.binary, str(CONFIG_DIR / "redis.conf")]  # tests, benchmarks: same file
    finally:
        local.close()
        plain.close()
    # The password reaches Redis and the Embedder from the environment only.
    password = "${VOXCACHE_REDIS_PASSWORD:?"
    assert redis_service["environment"]["VOXCACHE_REDIS_PASSWORD"].startswith(password)
    embedder = compose()["services"]["embedder"]["environment"]
    assert embedder["VOXCACHE_REDIS_PASSWORD"].startswith(password)
    assert embedder["VOXCACHE_REDIS_URL"] == f"redis://{EMBEDDER_USER}@redis:6379/0"
    assert f"--user {EMBEDDER_USER}" in redis_service["healthcheck"]["test"][-1]
    for line in (CONFIG_DIR / "users.conf").read_text().splitlines():  # no secret in the repository
        if line.startswith("user "):
            assert not any(rule.startswith((">", "#", "<")) or rule == "nopass" for rule in line.split()), line


def test_redis_conf_is_what_the_running_server_uses(redis_server: LocalRedis) -> None:
    conf = read_conf(CONFIG_DIR / "redis.conf")
    assert conf["maxmemory-policy"] == "volatile-lfu"  # not allkeys-lfu: redis.conf explains why
    live = redis.Redis.from_url(redis_server.url)
    assert live.config_get("maxmemory-policy")["maxmemory-policy"] == conf["maxmemory-policy"]
    assert int(live.config_get("maxmemory")["maxmemory"]) == to_bytes(conf["maxmemory"])
    assert live.config_get("save")["save"] == "" and live.config_get("appendonly")["appendonly"] == "no"
    assert live.config_get("protected-mode")["protected-mode"] == "yes"


def test_images_and_compose_use_the_grpc_health_service() -> None:
    for name in ("embedder", "synthesizer"):
        dockerfile = (REPO_ROOT / "services" / name / "Dockerfile").read_text()
        assert f'"/usr/local/bin/voxcache-healthcheck", "{name}"]' in dockerfile
        assert "COPY deploy/healthcheck.py /usr/local/bin/voxcache-healthcheck" in dockerfile
        assert compose()["services"][name]["healthcheck"]["test"][-2:] == ["/usr/local/bin/voxcache-healthcheck", name]
