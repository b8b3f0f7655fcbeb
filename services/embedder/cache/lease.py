"""Cross-process single-flight: one extraction per key across every worker that shares a Redis.

`SingleFlight` coalesces identical misses inside one process; with several workers (or
several Embedders on one Redis) each would still run the model once. Before a miss runs
the model, its process claims the entry's lease (`SET <entry key>:lease <token> NX PX`):
- the winner extracts, renewing the lease every third of its life while it works, writes
  the entry, announces the key on one pub/sub channel and deletes the lease (only while its
  own token still holds it: a compare-and-delete in Lua);
- the others wait. Each registers its wake-up *before* it looks at the cache again, so an
  announcement that lands between the look and the wait is not lost; it then re-checks the
  store whenever an announcement names its key, or every `poll_s` when pub/sub is silent
  (a dropped subscription only costs latency). A re-check that finds the entry answers;
- a holder that dies stops renewing, its lease expires after `ttl_ms`, and the next re-check
  of a waiter takes it over and extracts (counted as a takeover);
- Redis unreachable (or none): no lease, the process extracts by itself (fail-open).

A waiter's gRPC deadline is enforced by its caller (`TieredCache.fetch`); the holder's
extraction is unaffected by waiters leaving and still lands in the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.embedder.cache import keys
from services.embedder.cache.redis_store import RedisStore
from services.embedder.cache.store import StoreUnavailable

log = logging.getLogger(__name__)
V = TypeVar("V")

#: A listener that failed is not restarted more often than this (Redis down: waiters poll).
_RELISTEN_S = 1.0


@dataclass
class LeaseCounters:
    #: Misses answered by another worker's extraction after waiting on its lease.
    peer_fills: int = 0
    #: Leases taken after waiting on one that expired (its holder died or stalled) or was
    #: released without an entry (its extraction failed).
    takeovers: int = 0


@dataclass(frozen=True)
class Claim(Generic[V]):
    """What `Leases.claim` ends with: the entry another worker filled, or a lease to fill it
    (both None: Redis is unreachable, so extract without one)."""

    found: V | None = None
    lease: Lease | None = None


class Lease:
    """A held lease, renewed in the background until `release`."""

    def __init__(self, store: RedisStore, key: str, token: str, ttl_ms: int, channel: str, entry_key: str) -> None:
        self.key = key
        self.token = token
        self._store = store
        self._ttl_ms = ttl_ms
        self._channel = channel
        self._entry_key = entry_key
        self._renewer = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                if not await self._store.renew_lease(self.key, self.token, self._ttl_ms):
                    log.warning("lost the lease on %s (expired while extracting); finishing anyway", self.key)
                    return
            except StoreUnavailable:
                pass  # the store logs; the lease may expire and another worker extract too

    async def release(self, *, announce: bool = True) -> None:
        """Stop renewing, tell the waiters (whatever the outcome: they re-check), delete the lease."""
        self._renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewer
        try:
            if announce:
                await self._store.publish(self._channel, self._entry_key)
            await self._store.drop_lease(self.key, self.token)
        except StoreUnavailable:
            pass  # the lease expires by itself; waiters poll


class Leases:
    """Claims leases and wakes waiters; one pub/sub subscription per process."""

    def __init__(self, store: RedisStore, channel: str, *, owner: str, ttl_ms: int, poll_s: float) -> None:
        """`owner` begins every token, so `redis-cli GET <key>:lease` says which worker extracts."""
        self.store = store
        self.channel = channel
        self.owner = owner
        self.ttl_ms = ttl_ms
        self.poll_s = poll_s
        self.counters = LeaseCounters()
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._listened_at = -_RELISTEN_S
        self._subscribed = asyncio.Event()

    async def claim(self, entry_key: str, lookup: Callable[[], Awaitable[V | None]]) -> Claim[V]:
        """The entry (`lookup()` on the shared store) once another worker has filled it, or a lease."""
        lease_key = keys.lease(entry_key)
        token = f"{self.owner}:{secrets.token_hex(6)}"
        wake = asyncio.Event()
        self._waiting.setdefault(entry_key, set()).add(wake)  # before any look: no lost wake-up
        waited = False
        try:
            while True:
                wake.clear()
                try:
                    taken = await self.store.take_lease(lease_key, token, self.ttl_ms)
                except StoreUnavailable:
                    return Claim()
                if taken:
                    lease = Lease(self.store, lease_key, token, self.ttl_ms, self.channel, entry_key)
                    # The last holder may have filled the entry and left between our miss and our SET NX.
                    found = await lookup()
                    if found is not None:
                        await lease.release(announce=False)
                        if waited:  # woken by the holder's announcement, after it dropped its lease
                            self.counters.peer_fills += 1
                        return Claim(found=found)
                    if waited:
                        self.counters.takeovers += 1
                    return Claim(lease=lease)
                await self._listen()  # subscribed before the re-check: a fill after it is announced to us
                found = await lookup()
                if found is not None:
                    self.counters.peer_fills += 1
                    return Claim(found=found)
                waited = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll_s)
        finally:
            waiting = self._waiting.get(entry_key)
            if waiting is not None:
                waiting.discard(wake)
                if not waiting:
                    del self._waiting[entry_key]

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener

    # -- internals ------------------------------------------------------------------------
    async def _listen(self) -> None:
        """Start the subscription if it is not running, and give it a moment to be confirmed.

        Not confirmed in time (Redis slow or down): carry on; waiters poll meanwhile."""
        if self._listener is None or self._listener.done():
            now = time.monotonic()
            if now - self._listened_at < _RELISTEN_S:
                return
            self._listened_at = now
            self._subscribed = asyncio.Event()
            self._listener = asyncio.create_task(self._receive(self._subscribed))
        if not self._subscribed.is_set() and self._listener is not None:
            confirmed = asyncio.ensure_future(self._subscribed.wait())
            await asyncio.wait({confirmed, self._listener}, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
            confirmed.cancel()  # a listener that failed (Redis down) ends the wait at once

    async def _receive(self, subscribed: asyncio.Event) -> None:
        pubsub = self.store.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            # Redis's confirmation, not our sending, is what guarantees later announcements reach us.
            while (confirmed := await pubsub.get_message(timeout=30.0)) is None or confirmed["type"] != "subscribe":
                pass
            subscribed.set()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                if message is None or message.get("type") != "message":
                    continue
                data = message["data"]
                for wake in self._waiting.get(data.decode() if isinstance(data, bytes) else str(data), ()):
                    wake.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a lost subscription costs latency only: waiters poll
            log.warning("lease announcements unavailable (%s: %s); waiters poll", type(exc).__name__, exc)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
