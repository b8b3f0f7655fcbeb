"""L2: the shared Redis, behind a fail-open circuit breaker.

Every method either answers or raises `StoreUnavailable` quickly: short socket
timeouts, no client-side retries, and after a failure Redis is skipped for
`retry_interval` seconds so an outage costs one timeout, not one per request.
The first call after the interval probes again, so recovery needs no restart.

Two answers are not outages and do not skip Redis: a key of another type than the
command expects (WRONGTYPE: someone else's data at our key) is deleted, counted and the
command run once more, so it acts like a missing key and is replaced by the next write;
an ACL refusal (NOPERM) raises `StoreRefused`, which says it is a permission problem.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio.client import PubSub
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from services.common.redis_client import make_client
from services.embedder.cache import keys
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


def is_wrong_type(exc: Exception) -> bool:
    return isinstance(exc, ResponseError) and _WRONGTYPE in str(exc)


class RedisStore:
    """The `Store` over one Redis server."""

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
        self._retry_interval_s = retry_interval_s
        self._down_until = 0.0
        self._down = False
        self._on_error = on_error
        self._on_wrong_type = on_wrong_type
        self._refused_logged_at = -_REFUSED_LOG_INTERVAL_S
        # Compare-and-act on a lease's token: only its holder may extend or delete it.
        self._renew = self._client.register_script(_RENEW_IF_HELD)
        self._drop = self._client.register_script(_DROP_IF_HELD)

    @property
    def available(self) -> bool:
        return not self._down

    async def _call(self, what: str, op: Callable[[], Awaitable[T]], *, key: str | None = None) -> T:
        """Run `op` behind the breaker. `key`: the key `op` reads or writes, replaced when it
        holds another type than `op` expects."""
        if self._down and time.monotonic() < self._down_until:
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
        except (RedisError, OSError, TimeoutError) as exc:
            self._on_error()
            if not self._down:
                log.warning(
                    "Redis %s failed (%s: %s); serving without Redis, retrying every %.1fs",
                    what,
                    type(exc).__name__,
                    exc,
                    self._retry_interval_s,
                )
            self._down = True
            self._down_until = time.monotonic() + self._retry_interval_s
            if isinstance(exc, RedisConnectionError):
                await self._drop_idle_connections()
            raise StoreUnavailable(f"Redis {what} failed: {exc}") from exc
        if self._down:
            log.warning("Redis is reachable again")
            self._down = False
        return result

    async def _drop_idle_connections(self) -> None:
        """A lost connection means Redis went away: its idle pooled siblings are dead too.

        Left in the pool, each would fail its next command once, whenever a burst next
        needs it (minutes after Redis is back); closed now, they reconnect on next use.
        Connections in use are left to fail or finish on their own.
        """
        await self._client.connection_pool.disconnect(inuse_connections=False)

    # -- conditioning entries ---------------------------------------------------------
    async def get_sliding(self, key: str, ttl_s: int) -> bytes | None:
        """GET and slide the TTL in one round trip, without unpinning pinned keys.

        A bare `GETEX key EX ttl` would also put an expiry on a pinned key; `EXPIRE
        ... XX` (Redis >= 7) only touches keys that already have one. Both commands go out
        on one pooled connection and both replies are read, as a pipeline would, but
        without building redis-py's pipeline object: that was a third of a Redis hit's
        client-side time. A connection left with an unread reply (an error, a timeout, a
        cancelled caller) is closed, never returned to the pool half-read.
        """
        commands = (("GET", key), ("EXPIRE", key, ttl_s, "XX"))

        async def op() -> bytes | None:
            pool = self._client.connection_pool
            connection = await pool.get_connection()
            try:
                await connection.send_packed_command(connection.pack_commands(commands))
                value: bytes | None = await connection.read_response()
                await connection.read_response()
            except BaseException:
                await connection.disconnect()
                raise
            finally:
                await pool.release(connection)
            return value

        return await self._call("GET", op, key=key)

    async def put(self, key: str, value: bytes, ttl_s: int | None) -> None:
        """Store an entry. ttl_s=None pins it (and unpins nothing: NX keeps a pinned twin)."""
        if ttl_s is None:
            await self._call("SET", lambda: self._client.set(key, value), key=key)
        else:
            await self._call("SET", lambda: self._client.set(key, value, ex=ttl_s, nx=True), key=key)

    async def get(self, key: str) -> bytes | None:
        return await self._call("GET", lambda: self._client.get(key), key=key)

    async def slide(self, key: str, ttl_s: int) -> None:
        """Reset the TTL of an entry that has one; pinned entries stay pinned."""
        await self._call("EXPIRE", lambda: self._client.expire(key, ttl_s, xx=True))

    async def expire(self, key: str, ttl_s: int) -> None:
        await self._call("EXPIRE", lambda: self._client.expire(key, ttl_s))

    async def delete(self, key: str) -> None:
        await self._call("DEL", lambda: self._client.delete(key))

    # -- leases: cross-process single-flight (cache/lease.py) ---------------------------
    async def take_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """SET NX PX: True when this caller now holds the lease on `key`."""
        taken = await self._call("SET", lambda: self._client.set(key, token, px=ttl_ms, nx=True))
        return bool(taken)

    async def renew_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """Extend the lease if `token` still holds it; False when it expired or another took it."""
        return bool(await self._call("EVALSHA", lambda: self._renew(keys=[key], args=[token, ttl_ms])))

    async def drop_lease(self, key: str, token: str) -> None:
        """Delete the lease only if `token` still holds it (never another worker's lease)."""
        await self._call("EVALSHA", lambda: self._drop(keys=[key], args=[token]))

    async def publish(self, channel: str, message: str) -> None:
        await self._call("PUBLISH", lambda: self._client.publish(channel, message))

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

    # -- housekeeping -------------------------------------------------------------------
    async def dbsize(self) -> int:
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

    async def close(self) -> None:
        await self._client.aclose()
