"""L2: the shared Redis, behind a fail-open circuit breaker.

Every method either answers or raises `StoreUnavailable` quickly: short socket
timeouts, no client-side retries, and after a failure Redis is skipped for
`retry_interval` seconds so an outage costs one timeout, not one per request.
The first call after the interval probes again, so recovery needs no restart.

A Redis Cluster (`redis+cluster://`) is the same store over redis-py's cluster client: each
command goes to its key's master, MOVED and ASK are followed by the client, and a failure
that may mean a changed topology (a lost connection, a timeout, CLUSTERDOWN, an uncovered
slot) re-reads the slot table, so a replica promoted after its master died is used without
a restart. The breaker is kept per master: a dead master's slots are skipped, the other
masters' are not. No command here names two keys (see keys.py for the tags).

Two answers are not outages and do not skip Redis: a key of another type than the
command expects (WRONGTYPE: someone else's data at our key) is deleted, counted and the
command run once more, so it acts like a missing key and is replaced by the next write;
an ACL refusal (NOPERM) raises `StoreRefused`, which says it is a permission problem.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from redis.asyncio import RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterError,
    MovedError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.redis_client import make_client
from services.embedder.cache import keys
from services.embedder.cache.get_connections import GetConnections
from services.embedder.cache.store import StoreAuthError, StoreRefused, StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Redis's reply to a command on a key of another type (redis-py has no class for it, and
#: wraps a pipeline's errors in its own text, so the reply is matched, not the prefix).
_WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
#: A refusal is logged at most this often: every request would otherwise log one.
_REFUSED_LOG_INTERVAL_S = 60.0


#: Lua run by Redis (EVALSHA), so that checking a lease's token and acting on it is one step.
_IF_HELD = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call({}) end return 0"
_RENEW_IF_HELD = _IF_HELD.format("'PEXPIRE', KEYS[1], ARGV[2]")
_DROP_IF_HELD = _IF_HELD.format("'DEL', KEYS[1]")

_ACL_HINT = (
    "the Redis ACL does not allow this user that command or key: its key pattern must cover "
    "--cache-prefix (deploy/redis/users.conf ships `~voxcache:*`)"
)
#: Failures after which a cluster client must re-read the slot table before its next command.
_TOPOLOGY_ERRORS = (RedisConnectionError, RedisTimeoutError, ClusterError, RedisClusterException)


async def _exchange(connection: Connection, commands: list[bytes]) -> Any:
    """Write packed commands on one connection and read every reply; the last one is returned
    (an error reply raises). A connection left with an unread reply (an error, a timeout, a
    cancelled caller) is closed, never reused half-read."""
    try:
        await connection.send_packed_command(commands)
        for _ in commands[1:]:
            await connection.read_response()
        return await connection.read_response()
    except BaseException:
        await connection.disconnect()
        raise


def is_wrong_type(exc: Exception) -> bool:
    return isinstance(exc, ResponseError) and _WRONGTYPE in str(exc)


class RedisStore:
    """The `Store` over one Redis server or a Redis Cluster."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.25,
        retry_interval_s: float = 1.0,
        password: str | None = None,
        on_error: Callable[[], None] = lambda: None,
        on_wrong_type: Callable[[], None] = lambda: None,
    ) -> None:
        self._client = make_client(url, timeout_s=timeout_s, password=password)
        self._cluster = isinstance(self._client, RedisCluster)
        #: A hit's GET on a single server (get_connections.py); a cluster's go to their key's master.
        self._gets = (
            None
            if self._cluster
            else GetConnections(self._client.connection_pool, timeout_s, self._drop_idle_connections)
        )
        self._retry_interval_s = retry_interval_s
        #: The breaker, per part of Redis: "" for a single server (and a cluster's keyless
        #: commands), a master's name for the keys it serves. A part is down from a failure
        #: until a call on it succeeds; it is skipped until the time stored here.
        self._down_until: dict[str, float] = {}
        self._on_error = on_error
        self._on_wrong_type = on_wrong_type
        self._refused_logged_at = -_REFUSED_LOG_INTERVAL_S
        # Compare-and-act on a lease's token: only its holder may extend or delete it.
        self._renew = self._client.register_script(_RENEW_IF_HELD)
        self._drop = self._client.register_script(_DROP_IF_HELD)

    @property
    def available(self) -> bool:
        """False while any part of Redis (a cluster: any master) is marked down."""
        return not self._down_until

    def _part(self, route: str | None) -> str:
        """Which breaker a command to `route` (its key) is behind: on a cluster the master its
        slot table names for that key, so a dead master's slots are skipped while the other
        masters keep serving theirs; otherwise "" (one server, or a keyless command)."""
        if not self._cluster or route is None:
            return ""
        serving = self._client.nodes_manager.slots_cache.get(key_slot(route.encode()))
        return str(serving[0].name) if serving else ""  # "": no slot table yet, or the slot is not served

    async def _call(
        self, what: str, op: Callable[[], Awaitable[T]], *, key: str | None = None, route: str | None = None
    ) -> T:
        """Run `op` behind the breaker. `key`: the key `op` reads or writes, replaced when it
        holds another type than `op` expects; `route`: the key that picks a cluster's master
        (defaults to `key`)."""
        part = self._part(route or key)
        down_until = self._down_until.get(part)
        if down_until is not None and time.monotonic() < down_until:
            raise StoreUnavailable(f"Redis marked down; skipping {what}")
        try:
            try:
                result = await op()
            except ResponseError as exc:
                if key is None or not is_wrong_type(exc):
                    raise
                self._on_wrong_type()
                log.warning("Redis key %s holds another type than %s expects; deleted it", key, what)
                await self._client.delete(key)
                result = await op()  # now a missing key: what a miss, an absent voice or a first write sees
        except NoPermissionError as exc:
            self._on_error()
            if time.monotonic() - self._refused_logged_at >= _REFUSED_LOG_INTERVAL_S:
                self._refused_logged_at = time.monotonic()
                log.error("Redis refused %s: %s; %s", what, exc, _ACL_HINT)
            raise StoreRefused(f"Redis refused {what} (permission denied by its ACL: {exc})") from exc
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            self._on_error()
            if part not in self._down_until:
                log.warning(
                    "Redis %s failed%s (%s: %s); serving without Redis, retrying every %.1fs",
                    what,
                    f" on {part}" if part else "",
                    type(exc).__name__,
                    exc,
                    self._retry_interval_s,
                )
            self._down_until[part] = time.monotonic() + self._retry_interval_s
            if self._cluster and isinstance(exc, _TOPOLOGY_ERRORS):
                await self._forget_topology(part)
            elif isinstance(exc, RedisConnectionError):
                await self._drop_idle_connections()
            raise StoreUnavailable(f"Redis {what} failed: {exc}") from exc
        if self._down_until:
            self._recovered(part)
        return result

    def _recovered(self, part: str) -> None:
        """A call on `part` succeeded: it is up again. On a cluster a master that no longer
        serves any slot (dead, its replica promoted) is forgotten too: nothing would ever
        succeed on it to clear its mark."""
        if self._down_until.pop(part, None) is not None:
            log.warning("Redis is reachable again%s", f" on {part}" if part else "")
        if self._cluster and self._down_until:
            serving = {node.name for node in self._client.nodes_manager.nodes_cache.values()}
            for stale in [p for p in self._down_until if p and p not in serving]:
                del self._down_until[stale]
                log.warning("Redis master %s serves no slot any more (its replica took over); forgotten", stale)

    async def _drop_idle_connections(self) -> None:
        """A lost connection means Redis went away: its idle pooled siblings are dead too.

        Left in the pool, each would fail its next command once, whenever a burst next
        needs it (minutes after Redis is back); closed now, they reconnect on next use.
        Connections in use are left to fail or finish on their own.
        """
        await self._client.connection_pool.disconnect(inuse_connections=False)
        if self._gets is not None:
            await self._gets.disconnect()

    async def _forget_topology(self, failed: str) -> None:
        """Cluster: a master may have died or its slots moved. Re-read the slot table now from
        the nodes still up (a node that does not answer is skipped), and stop using the
        failed master as the client's default node (redis-py sends keyless commands, and the
        COMMAND of its own re-initialisation, there). Until its replica is promoted the table
        still names the dead master and its slots fail fast behind its breaker; the first
        retry after the promotion reads the new table, and its slots are served again.
        `aclose()`, redis-py's own reaction to CLUSTERDOWN, would also cut the commands in
        flight to the healthy masters."""
        client = self._client
        assert isinstance(client, RedisCluster)
        try:
            await client.nodes_manager.initialize(last_failed_node_name=failed or None)
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            log.debug("Redis Cluster slot table not re-read: %s", exc)
        default = client.get_default_node()
        if default is not None and default.name == failed:
            client.replace_default_node()

    # -- conditioning entries ---------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        """GET, written straight onto a connection (on a single server one of the store's own,
        get_connections.py): it is the whole of a Redis hit's round trip, and redis-py's generic
        command packing, dispatch and pool cost as much client time as the verification of the
        record it returns.
        """
        encoded = key.encode()
        command = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(encoded), encoded)
        if self._cluster:
            return await self._call("GET", lambda: self._get_on_node(key, command), key=key)

        async def op() -> bytes | None:
            gets = self._gets
            if gets is not None and gets.available():
                return await gets.run(lambda connection: _exchange(connection, [command]))
            pool = self._client.connection_pool
            connection = await pool.get_connection()
            try:
                return await _exchange(connection, [command])
            finally:
                await pool.release(connection)

        return await self._call("GET", op, key=key)

    async def _get_on_node(self, key: str, command: bytes) -> bytes | None:
        """The cluster's `get`: the command on a connection to the key's master, as above. A
        redirect (the slot is being moved) is rare: MOVED is left to the cluster client's own
        GET, which follows it and updates the slot table; ASK is followed here."""
        client = self._client
        assert isinstance(client, RedisCluster)
        if not client.nodes_manager.slots_cache:  # first use; later refreshes: _forget_topology
            await client.initialize()
        node = client.get_node_from_key(key)
        connection: Connection = node.acquire_connection()
        redirect: AskError | None = None
        try:
            value: bytes | None = await _exchange(connection, [command])
        except AskError as exc:  # MOVED is an AskError too
            redirect = exc
        finally:
            node.release(connection)  # before following a redirect, which needs connections of its own
        if redirect is None:
            return value
        if isinstance(redirect, MovedError):
            return await client.get(key)
        return await self._get_asking(client, key, redirect, command)

    @staticmethod
    async def _get_asking(client: RedisCluster, key: str, redirect: AskError, command: bytes) -> bytes | None:
        """ASK: mid-migration the key may already be on the importing master, which serves it
        only to a connection that has just sent ASKING. redis-py sends ASKING and the command
        as two pooled commands, which may go out on two connections (seen here: the importing
        master answered MOVED back, until redis-py's redirect budget ran out), so both go out
        here on one connection."""
        node = client.get_node(host=redirect.host, port=redirect.port)
        if node is None:
            return await client.get(key)
        connection: Connection = node.acquire_connection()
        try:
            return await _exchange(connection, [b"*1\r\n$6\r\nASKING\r\n", command])
        finally:
            node.release(connection)

    async def put(self, key: str, value: bytes, ttl_s: int | None, *, replace: bool = False) -> None:
        """Store an entry. ttl_s=None pins it (and unpins nothing: NX keeps a pinned twin);
        `replace`: overwrite what is there with this TTL (an index that may point at a lost entry)."""
        if ttl_s is not None and replace:
            await self._call("SET", lambda: self._client.set(key, value, ex=ttl_s), key=key)
        elif ttl_s is None:
            await self._call("SET", lambda: self._client.set(key, value), key=key)
        else:
            await self._call("SET", lambda: self._client.set(key, value, ex=ttl_s, nx=True), key=key)

    async def slide(self, key: str, ttl_s: int) -> None:
        """Reset the TTL of an entry that has one; pinned entries stay pinned."""
        await self._call("EXPIRE", lambda: self._client.expire(key, ttl_s, xx=True), route=key)

    async def expire(self, key: str, ttl_s: int) -> None:
        await self._call("EXPIRE", lambda: self._client.expire(key, ttl_s), route=key)

    async def delete(self, key: str) -> None:
        await self._call("DEL", lambda: self._client.delete(key), route=key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Plain GETs in one round trip, TTLs untouched (a warm start reads; it does not use)."""

        async def op() -> list[bytes | None]:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            return await pipe.execute(raise_on_error=False)

        values = await self._call("GET", op)
        return [value if isinstance(value, bytes) else None for value in values]

    # -- hotness (a sorted set: conditioning key -> decayed request count) -----------------
    async def add_scores(
        self, key: str, increments: Mapping[str, float], *, keep: int, decay_key: str, half_life_s: int
    ) -> None:
        """ZINCRBY each member, trim to the `keep` highest, and halve every score once per
        `half_life_s` across all workers (whoever sets `decay_key` first does it), so what was
        hot last week gives way to what is hot now."""

        async def op() -> None:
            halve = await self._client.set(decay_key, b"1", nx=True, ex=half_life_s)
            pipe = self._client.pipeline(transaction=False)
            if halve:  # old scores first, so this flush's counts count in full
                pipe.zunionstore(key, {key: 0.5})
            for member, amount in increments.items():
                pipe.zincrby(key, amount, member)
            pipe.zremrangebyrank(key, 0, -(keep + 1))
            await pipe.execute()

        await self._call("ZINCRBY", op, key=key)

    async def top(self, key: str, count: int) -> list[str]:
        """The `count` highest-scored members, highest first."""
        members = await self._call("ZREVRANGE", lambda: self._client.zrevrange(key, 0, count - 1), key=key)
        return [m.decode() for m in members]

    async def remove_members(self, key: str, members: Sequence[str]) -> None:
        if members:
            await self._call("ZREM", lambda: self._client.zrem(key, *members), key=key)

    # -- leases: cross-process single-flight (cache/lease.py) ---------------------------
    async def take_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """SET NX PX: True when this caller now holds the lease on `key`."""
        taken = await self._call("SET", lambda: self._client.set(key, token, px=ttl_ms, nx=True), route=key)
        return bool(taken)

    async def renew_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """Extend the lease if `token` still holds it; False when it expired or another took it."""
        return bool(await self._call("EVALSHA", lambda: self._renew(keys=[key], args=[token, ttl_ms]), route=key))

    async def drop_lease(self, key: str, token: str) -> None:
        """Delete the lease only if `token` still holds it (never another worker's lease)."""
        await self._call("EVALSHA", lambda: self._drop(keys=[key], args=[token]), route=key)

    def pubsub(self) -> PubSub:
        """A pub/sub connection of its own (redis-py keeps one per PubSub object)."""
        return self._client.pubsub()

    # -- voice registry (a hash: voice_id -> JSON metadata) ---------------------------
    async def hget(self, key: str, field: str) -> bytes | None:
        return await self._call("HGET", lambda: self._client.hget(key, field), key=key)

    async def hset(self, key: str, field: str, value: bytes, *, only_new: bool) -> bool:
        if only_new:
            return bool(await self._call("HSETNX", lambda: self._client.hsetnx(key, field, value), key=key))
        await self._call("HSET", lambda: self._client.hset(key, field, value), key=key)
        return True

    async def hdel(self, key: str, field: str) -> bool:
        return bool(await self._call("HDEL", lambda: self._client.hdel(key, field), key=key))

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return await self._call("HGETALL", lambda: self._client.hgetall(key), key=key)

    async def hmget(self, key: str, fields: Sequence[str]) -> list[bytes | None]:
        if not fields:
            return []
        return await self._call("HMGET", lambda: self._client.hmget(key, list(fields)), key=key)

    async def hscan(self, key: str, cursor: int, count: int) -> tuple[int, dict[bytes, bytes]]:
        return await self._call("HSCAN", lambda: self._client.hscan(key, cursor, count=count), key=key)

    async def hlen(self, key: str) -> int:
        return int(await self._call("HLEN", lambda: self._client.hlen(key), key=key))

    # -- voice search: a version counter and change announcements ------------------------
    async def incr(self, key: str) -> int:
        # INCR itself: redis-py's incr() sends INCRBY, which the ACL (users.conf) does not allow.
        return int(await self._call("INCR", lambda: self._client.execute_command("INCR", key), key=key))

    async def publish(self, channel: str, message: bytes | str) -> None:
        await self._call("PUBLISH", lambda: self._client.publish(channel, message))

    async def listen(
        self, channel: str, on_message: Callable[[bytes], Awaitable[None]], on_subscribed: Callable[[], None]
    ) -> None:
        """Subscribe on a connection of its own (outside the breaker: nothing waits on it) and
        deliver messages until cancelled; after any failure, wait `retry_interval` and resubscribe."""
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                on_subscribed()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        try:
                            await on_message(bytes(message["data"]))
                        except Exception:  # one bad message must not end the subscription
                            log.exception("handling a message on %s failed", channel)
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("subscription to %s lost (%s); resubscribing", channel, exc)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisError, OSError, TimeoutError):
                    pass
            await asyncio.sleep(self._retry_interval_s)

    # -- housekeeping -------------------------------------------------------------------
    async def dbsize(self) -> int:
        if self._cluster:  # every master's keys: without a target redis-py asks one node
            return int(await self._call("DBSIZE", lambda: self._client.dbsize(target_nodes=RedisCluster.PRIMARIES)))
        return int(await self._call("DBSIZE", self._client.dbsize))

    async def check(self, prefix: str) -> None:
        """Start-up probe. Wrong credentials, or an ACL that does not let this user write keys
        under `prefix` (a SET and DEL of one probe key), raise StoreAuthError: refuse to
        start, retrying cannot fix them. An unreachable Redis raises StoreUnavailable (serve
        and keep retrying)."""
        try:
            await self._client.ping()
        except AuthenticationError as exc:
            raise StoreAuthError(f"Redis rejected the credentials: {exc}") from exc
        except ResponseError as exc:
            if str(exc).split(" ", 1)[0] in ("NOAUTH", "WRONGPASS", "NOPERM"):
                raise StoreAuthError(f"Redis refused access: {exc}") from exc
            raise
        except (RedisError, OSError, TimeoutError):
            await self._call("PING", self._client.ping)  # marks the store down and logs once
        except RedisClusterException:
            await self._diagnose_cluster()
            await self._call("PING", self._client.ping)  # unreachable: marks the store down and logs once
        probe = keys.probe(prefix)
        try:
            await self._client.set(probe, secrets.token_hex(8), ex=10)
            await self._client.delete(probe)
        except NoPermissionError as exc:
            raise StoreAuthError(
                f"Redis refused access: this user may not write keys under the cache prefix {prefix!r} ({exc}). "
                f"The ACL user's key pattern must cover it: deploy/redis/users.conf ships `~voxcache:*`; "
                f"change that rule to `~{prefix}:*`, or run with --cache-prefix voxcache"
            ) from exc
        except (RedisError, OSError, TimeoutError):
            await self._call("SET", lambda: self._client.set(probe, b"", ex=10))  # marks the store down

    async def _diagnose_cluster(self) -> None:
        """redis-py words every failure to read the slot table as "cannot be connected" (or
        "cluster mode is not enabled"), which hides wrong credentials and an ACL without the
        cluster's commands. Ask each seed node directly, as this user: either is a
        StoreAuthError (refuse to start); a seed that does not answer is left to the caller."""
        assert isinstance(self._client, RedisCluster)
        for node in list(self._client.nodes_manager.startup_nodes.values()):
            connection: Connection = node.connection_class(**node.connection_kwargs)
            try:
                await connection.connect()
                await connection.send_command("CLUSTER", "SLOTS")
                await connection.read_response()
                await connection.send_command("COMMAND", "COUNT")
                await connection.read_response()
            except AuthenticationError as exc:
                raise StoreAuthError(f"Redis rejected the credentials: {exc}") from exc
            except NoPermissionError as exc:
                raise StoreAuthError(
                    f"Redis refused access: {exc}. In a Redis Cluster the ACL user also needs `+cluster|slots "
                    "+command` (the cluster client reads the slot table and the command table): see "
                    "deploy/redis/users-cluster.conf"
                ) from exc
            except (RedisError, OSError, TimeoutError):
                continue
            finally:
                await connection.disconnect()

    async def close(self) -> None:
        if self._gets is not None:
            await self._gets.disconnect()
        await self._client.aclose()
