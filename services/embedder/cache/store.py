"""The shared tier's interface, and the stand-in used when there is no shared tier.

`TieredCache` and the Redis voice registry talk to a `Store`; `RedisStore` is the real
one. `NoStore` answers as an always-unreachable store would, so a deployment without Redis
runs the very same code paths as one whose Redis is down, and nothing above this module
asks "is there a store?".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol


class StoreUnavailable(Exception):
    """The store did not answer (down, slow, refused, or absent); carry on without it."""


class StoreRefused(StoreUnavailable):
    """The store is up but its ACL refused a command or key (NOPERM): a configuration error.

    Still a `StoreUnavailable`, so callers fail open exactly as in an outage; the message
    says what was refused, so nobody goes looking for a network problem."""


class StoreAuthError(Exception):
    """The store refused our credentials or our prefix: a configuration error, not an outage."""


class Store(Protocol):
    @property
    def available(self) -> bool: ...

    async def put(self, key: str, value: bytes, ttl_s: int | None, *, replace: bool = False) -> None:
        """Store an entry; ttl_s=None pins it; `replace` overwrites an existing value."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def add_scores(
        self, key: str, increments: Mapping[str, float], *, keep: int, decay_key: str, half_life_s: int
    ) -> None: ...

    async def top(self, key: str, count: int) -> list[str]: ...

    async def remove_members(self, key: str, members: Sequence[str]) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def slide(self, key: str, ttl_s: int) -> None: ...

    async def expire(self, key: str, ttl_s: int) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def take_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """SET NX PX: True when this caller now holds the lease on `key`."""
        ...

    async def renew_lease(self, key: str, token: str, ttl_ms: int) -> bool: ...

    async def drop_lease(self, key: str, token: str) -> None: ...

    async def hget(self, key: str, field: str) -> bytes | None: ...

    async def hset(self, key: str, field: str, value: bytes, *, only_new: bool) -> bool: ...

    async def hdel(self, key: str, field: str) -> bool: ...

    async def hgetall(self, key: str) -> dict[bytes, bytes]: ...

    async def hmget(self, key: str, fields: Sequence[str]) -> list[bytes | None]: ...

    async def hscan(self, key: str, cursor: int, count: int) -> tuple[int, dict[bytes, bytes]]:
        """One page of a hash (about `count` fields) and the cursor of the next (0: done): a big
        hash is read in round trips that each fit the store's short timeout."""
        ...

    async def hlen(self, key: str) -> int: ...

    async def incr(self, key: str) -> int: ...

    async def publish(self, channel: str, message: bytes | str) -> None: ...

    async def listen(
        self, channel: str, on_message: Callable[[bytes], Awaitable[None]], on_subscribed: Callable[[], None]
    ) -> None:
        """Deliver `channel`'s messages until cancelled, resubscribing after failures; `on_subscribed`
        runs on each (re)subscription, since messages published while disconnected are lost."""
        ...

    async def dbsize(self) -> int: ...

    async def check(self, prefix: str) -> None:
        """Start-up probe: reachable, our credentials, and allowed to write keys under `prefix`."""
        ...

    async def close(self) -> None: ...


class NoStore:
    """No shared tier at all: every operation is 'unavailable', at no cost."""

    available = False

    async def _absent(self, *_args: object, **_kwargs: object) -> None:
        raise StoreUnavailable("no shared store is configured")

    put = get = slide = expire = delete = get_many = add_scores = top = remove_members = _absent
    hget = hset = hdel = hgetall = hmget = hscan = hlen = incr = publish = dbsize = _absent
    take_lease = renew_lease = drop_lease = _absent

    async def listen(
        self, channel: str, on_message: Callable[[bytes], Awaitable[None]], on_subscribed: Callable[[], None]
    ) -> None:
        return None  # nothing is ever published without a shared store

    async def check(self, prefix: str) -> None:
        return None

    async def close(self) -> None:
        return None
