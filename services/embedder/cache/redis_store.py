"""L2: the shared Redis, behind a fail-open circuit breaker.

Every method either answers or raises `StoreUnavailable` quickly: short socket
timeouts, no client-side retries, and after a failure Redis is skipped for
`retry_interval` seconds so an outage costs one timeout, not one per request.
The first call after the interval probes again, so recovery needs no restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import AuthenticationError, RedisError, ResponseError

from services.common.redis_client import make_client
from services.embedder.cache.store import StoreAuthError, StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    ) -> None:
        self._client = make_client(url, timeout_s=timeout_s, password=password)
        self._retry_interval_s = retry_interval_s
        self._down_until = 0.0
        self._down = False
        self._on_error = on_error

    @property
    def available(self) -> bool:
        return not self._down

    async def _call(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        if self._down and time.monotonic() < self._down_until:
            raise StoreUnavailable(f"Redis marked down; skipping {what}")
        try:
            result = await op()
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
            raise StoreUnavailable(f"Redis {what} failed: {exc}") from exc
        if self._down:
            log.warning("Redis is reachable again")
            self._down = False
        return result

    # -- conditioning entries ---------------------------------------------------------
    async def get_sliding(self, key: str, ttl_s: int) -> bytes | None:
        """GET and slide the TTL in one round trip, without unpinning pinned keys.

        A bare `GETEX key EX ttl` would also put an expiry on a pinned key; `EXPIRE
        ... XX` (Redis >= 7) only touches keys that already have one.
        """

        async def op() -> bytes | None:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.expire(key, ttl_s, xx=True)
                value, _ = await pipe.execute()
            return value

        return await self._call("GET", op)

    async def put(self, key: str, value: bytes, ttl_s: int | None) -> None:
        """Store an entry. ttl_s=None pins it (and unpins nothing: NX keeps a pinned twin)."""
        if ttl_s is None:
            await self._call("SET", lambda: self._client.set(key, value))
        else:
            await self._call("SET", lambda: self._client.set(key, value, ex=ttl_s, nx=True))

    async def get(self, key: str) -> bytes | None:
        return await self._call("GET", lambda: self._client.get(key))

    async def slide(self, key: str, ttl_s: int) -> None:
        """Reset the TTL of an entry that has one; pinned entries stay pinned."""
        await self._call("EXPIRE", lambda: self._client.expire(key, ttl_s, xx=True))

    async def expire(self, key: str, ttl_s: int) -> None:
        await self._call("EXPIRE", lambda: self._client.expire(key, ttl_s))

    async def delete(self, key: str) -> None:
        await self._call("DEL", lambda: self._client.delete(key))

    # -- voice registry (a hash: voice_id -> JSON metadata) ---------------------------
    async def hget(self, key: str, field: str) -> bytes | None:
        return await self._call("HGET", lambda: self._client.hget(key, field))

    async def hset(self, key: str, field: str, value: bytes, *, only_new: bool) -> bool:
        if only_new:
            return bool(await self._call("HSETNX", lambda: self._client.hsetnx(key, field, value)))
        await self._call("HSET", lambda: self._client.hset(key, field, value))
        return True

    async def hdel(self, key: str, field: str) -> bool:
        return bool(await self._call("HDEL", lambda: self._client.hdel(key, field)))

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return await self._call("HGETALL", lambda: self._client.hgetall(key))

    # -- housekeeping -------------------------------------------------------------------
    async def dbsize(self) -> int:
        return int(await self._call("DBSIZE", self._client.dbsize))

    async def check(self) -> None:
        """Start-up probe. Wrong credentials raise StoreAuthError (refuse to start: retrying
        cannot fix them); an unreachable Redis raises StoreUnavailable (serve and keep retrying)."""
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

    async def close(self) -> None:
        await self._client.aclose()
