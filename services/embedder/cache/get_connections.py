"""Connections of the store's own for a cache hit's `GET`, outside redis-py's pool.

Why: a Redis hit is one `GET`, and measured with py-spy under 32 concurrent clients,
borrowing a connection from redis-py's asyncio pool and giving it back (a lock each way, four
awaited observability hooks, an event dispatch, a socket probe) and the task redis-py creates
to put its socket timeout around every write cost the server more CPU than the `GET`'s own
bytes. These connections are made from the pool's own settings (so TLS, AUTH, ACL user and
database are the pool's), without a socket timeout: connecting and the exchange each run under
one `asyncio.timeout` of the store's timeout instead, which costs no task.

What the pool's probe was for is kept otherwise: a connection that sat idle may have been
closed by Redis or a proxy meanwhile, so a failure on a reused connection is retried once on
a new one, and only a failure on a new connection reaches the breaker. Such a failure means
Redis restarted or dropped idle clients, so `on_lost` is called first: the store closes the
pool's idle connections too, which would otherwise each fail once, later. At most `limit` are
kept; a `GET` that finds none idle while `limit` are busy waits for the pool's, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError

T = TypeVar("T")
Exchange = Callable[[AbstractConnection], Awaitable[T]]


class GetConnections:
    def __init__(
        self, pool: ConnectionPool, timeout_s: float, on_lost: Callable[[], Awaitable[None]], *, limit: int = 32
    ) -> None:
        self._pool = pool
        self._on_lost = on_lost
        self._timeout_s = timeout_s
        self._limit = limit
        self._idle: list[AbstractConnection] = []
        self._made = 0

    def available(self) -> bool:
        """Whether a connection is idle or may still be made."""
        return bool(self._idle) or self._made < self._limit

    async def run(self, exchange: Exchange[Any]) -> Any:
        """`exchange` on an idle connection (else a new one); a connection that fails is closed,
        and one that had sat idle is replaced once."""
        connection = self._idle.pop() if self._idle else self._make()
        try:
            result = await self._on(connection, exchange)
        except BaseException:
            await connection.disconnect()
            self._idle.append(connection)  # reconnects on its next use
            raise
        self._idle.append(connection)
        return result

    async def _on(self, connection: AbstractConnection, exchange: Exchange[Any]) -> Any:
        """Connecting and the exchange each get the store's timeout, as the pool's connections do
        (a connect timeout, then a socket timeout per command)."""
        if connection.is_connected:
            try:
                return await self._within(exchange(connection))
            except RedisConnectionError:  # redis-py's word for a closed socket (a timeout is not one)
                await connection.disconnect()
                await self._on_lost()  # closed while idle: the others are too
        await self._within(connection.connect())
        return await self._within(exchange(connection))

    async def _within(self, step: Awaitable[T]) -> T:
        async with asyncio.timeout(self._timeout_s):
            return await step

    def _make(self) -> AbstractConnection:
        self._made += 1
        settings: dict[str, Any] = {**self._pool.connection_kwargs, "socket_timeout": None}
        return self._pool.connection_class(**settings)

    async def disconnect(self) -> None:
        """Close the idle connections (Redis went away, or the store closes); they reconnect on use."""
        for connection in list(self._idle):
            await connection.disconnect()
