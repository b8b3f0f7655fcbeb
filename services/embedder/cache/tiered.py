"""One object for the whole cache: L1, the shared store, single-flight and fail-open.

It knows keys and records and nothing of models or gRPC: a miss is filled by whatever
`compute` the caller passes. Rules it keeps, so nobody else has to:
- a hit never decodes audio or touches the model; a hit (L1 or Redis) refreshes the shared
  TTL in the background, at most once a minute per key and process, so a voice hot in every
  worker's L1 never expires in Redis and a Redis hit's round trip is one GET;
- concurrent misses of one key run `compute` once (bypassing requests share their own one),
  and a `compute` still queued when every caller of its key has gone is dropped;
- a pinned request's entry is pinned, once per key per process, whoever stored it first;
- a store that is down, slow or absent costs at most one short timeout: the request is
  served from L1 or the model, never failed;
- an entry or pin that could not be written while the store was down waits in a bounded
  write-back queue and is written by a background task once the store answers again, so
  other workers get it from the store instead of recomputing it;
- a key that holds an alias (cache/alias.py: a re-encoded copy of a clip already cached)
  answers with the entry it points at, and L1 keeps that entry under both keys;
- a stored value that fails verification (checksum, or signature when keys are configured),
  or that does not hold exactly the tensors the caller expects, is counted, deleted and
  recomputed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from services.common.errors import DeadlineExceeded
from services.embedder.cache import alias, keys, record
from services.embedder.cache.keys import ConditioningKey
from services.embedder.cache.lease import Lease, Leases
from services.embedder.cache.local import LocalCache
from services.embedder.cache.singleflight import SingleFlight
from services.embedder.cache.store import Store, StoreRefused, StoreUnavailable
from services.embedder.cache.writeback import WriteBackQueue
from services.embedder.conditioning import Conditioning, TensorMismatch, TensorSpec, check_tensors

log = logging.getLogger(__name__)

#: Bound on the per-process bookkeeping sets; past it they are simply cleared (a lost entry
#: costs one redundant, idempotent Redis write).
_BOOKKEEPING_LIMIT = 100_000


class CacheTier(enum.Enum):
    """Which tier answered: used end to end, from the cache to the wire."""

    LOCAL = "local"
    REDIS = "redis"
    COMPUTED = "computed"


class Filled(Protocol):
    """What a miss's `compute` returns: the conditioning, plus whatever the caller wants back."""

    @property
    def conditioning(self) -> Conditioning: ...

    # Optionally `stored: bool`: True when the value already lives in the store under its own
    # key (the fill found it through an alias), so the fill writes nothing back.


T = TypeVar("T", bound=Filled)


@dataclass(frozen=True)
class Fetched(Generic[T]):
    conditioning: Conditioning
    tier: CacheTier
    #: Time spent looking the key up before the answer (or the miss) was known.
    cache_ms: float
    #: The fill that produced the value, when it was computed (by this caller or one it joined).
    filled: T | None = None
    #: True when this caller waited for another caller's identical miss.
    joined: bool = False


@dataclass
class CacheCounters:
    coalesced: int = 0
    corrupt_entries: int = 0
    #: Store lookups answered by following an alias to another key's entry.
    alias_hits: int = 0


@dataclass(frozen=True)
class CachePolicy:
    ttl_s: int
    pin: bool = False
    bypass: bool = False


class TieredCache:
    def __init__(
        self,
        local: LocalCache,
        store: Store,
        *,
        default_ttl_s: int,
        keyring: record.Keyring,
        write_back: WriteBackQueue | None = None,
        on_drop: Callable[[], None] | None = None,
        leases: Leases | None = None,
    ) -> None:
        """`on_drop`: called for each `compute` dropped before it started (every caller had gone);
        `leases`: cross-process single-flight over the store (None: this process only)."""
        self.local = local
        self.store = store
        self.default_ttl_s = default_ttl_s
        #: Signs what this process writes and verifies what it reads from the store.
        self.keyring = keyring
        #: Failed store writes waiting for the store; None when there is no store to wait for.
        self.write_back = write_back
        self._drainer: asyncio.Task[None] | None = None
        self.counters = CacheCounters()
        self.leases = leases
        self._flights: SingleFlight[Any] = SingleFlight(on_drop)
        self._bypass_flights: SingleFlight[Any] = SingleFlight(on_drop)
        #: Keys this process has already pinned in the store, so pinned hits do not rewrite them.
        self._pinned: set[str] = set()
        #: When this process last refreshed each L1-hit key's shared TTL.
        self._touched: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def fetch(
        self,
        key: ConditioningKey,
        compute: Callable[[], Awaitable[T]],
        policy: CachePolicy,
        expect: Sequence[TensorSpec],
        deadline: float | None = None,
    ) -> Fetched[T]:
        """The value for `key` from the fastest tier that has it, else from `compute` (once per key,
        and once across processes when `leases` is set).

        `expect`: the tensors a value under this key must hold (the encoder's declaration);
        `deadline` (time.monotonic() clock): when this caller stops waiting for a miss with
        DeadlineExceeded; the extraction it waited for carries on and is cached.
        """
        started = time.perf_counter()
        if not policy.bypass:
            found = await self.hit(key, policy.ttl_s, expect, pin=policy.pin)
            if found is not None:
                conditioning, tier = found
                return Fetched(conditioning, tier, (time.perf_counter() - started) * 1000)
        return await self.fill(key, compute, policy, expect, (time.perf_counter() - started) * 1000, deadline)

    async def hit(
        self, key: ConditioningKey, ttl_s: int, expect: Sequence[TensorSpec], *, pin: bool
    ) -> tuple[Conditioning, CacheTier] | None:
        """The entry from L1 or the store, pinned in the store when `pin` asks; None on a miss.

        The first half of `fetch`, for a caller that answers a hit itself (the Embedder's hot
        path) and calls `fill` only on a miss: a store hit then builds no fill, no policy and
        no closure.
        """
        found = await self.lookup(key, ttl_s, expect)
        if found is not None and pin:
            await self._ensure_pinned(found[0], pin)
        return found

    async def fill(
        self,
        key: ConditioningKey,
        compute: Callable[[], Awaitable[T]],
        policy: CachePolicy,
        expect: Sequence[TensorSpec],
        cache_ms: float,
        deadline: float | None = None,
    ) -> Fetched[T]:
        """The second half of `fetch`, after `hit` found nothing (or `policy` bypasses the cache):
        `compute` once per key (and once across processes with `leases`), stored and returned.
        `expect` as for `fetch` (a process waiting on another's lease reads its entry);
        `cache_ms`: what the lookup before it took, reported in the result."""

        async def compute_and_store() -> T | Conditioning:
            lease: Lease | None = None
            if not policy.bypass and self.leases is not None:
                claim = await self.leases.claim(key.redis_key, lambda: self._shared(key, policy.ttl_s, expect))
                if claim.found is not None:
                    return claim.found  # another process extracted it while this one waited
                lease = claim.lease
            try:
                filled = await compute()
                if not policy.bypass:
                    self.local.put(filled.conditioning)
                    if filled.conditioning.cache_key != key.redis_key:
                        self.local.put(filled.conditioning, key.redis_key)  # an alias's entry, under the alias too
                    if getattr(filled, "stored", False):
                        await self._ensure_pinned(filled.conditioning, policy.pin)
                    else:
                        await self._write(filled.conditioning, None if policy.pin else policy.ttl_s)
            finally:
                if lease is not None:
                    await lease.release()
            return filled

        # Identical bypass requests in flight share one (fresh, unstored) computation too, but
        # never join a normal miss: that one reads and writes the cache.
        flights = self._bypass_flights if policy.bypass else self._flights
        outcome, joined = await _within(deadline, flights.run(key.redis_key, compute_and_store))
        if joined:
            self.counters.coalesced += 1
        if isinstance(outcome, Conditioning):
            await self._ensure_pinned(outcome, policy.pin)
            return Fetched(outcome, CacheTier.REDIS, cache_ms, None, joined)
        if joined:
            await self._ensure_pinned(outcome.conditioning, policy.pin)  # the leader may not have pinned
        return Fetched(outcome.conditioning, CacheTier.COMPUTED, cache_ms, outcome, joined)

    def local_hit(self, redis_key: str, ttl_s: int, *, pin: bool) -> Conditioning | None:
        """The L1 entry when it answers the request by itself: present, and already pinned in the
        store if the request pins. None sends the caller to `fetch`, which handles the rest.

        Synchronous and allocation-free on purpose: it is the whole of a hot hit's cache work.
        """
        conditioning = self.local.get(redis_key)
        if conditioning is None or (pin and redis_key not in self._pinned):
            return None
        self._slide_later(redis_key, ttl_s)
        return conditioning

    async def lookup(
        self, key: ConditioningKey, ttl_s: int, expect: Sequence[TensorSpec], *, follow: bool = True
    ) -> tuple[Conditioning, CacheTier] | None:
        """L1, then the store; `follow`: an alias found in the store leads to its target's entry
        (one step: an alias that points at another alias is a miss)."""
        conditioning = self.local.get(key.redis_key)
        if conditioning is not None:
            self._slide_later(key.redis_key, ttl_s)
            return conditioning, CacheTier.LOCAL
        try:
            raw = await self.store.get(key.redis_key)
        except StoreUnavailable:
            return None
        if raw is None:
            return None
        if alias.is_alias(raw):
            return await self._follow(key, raw, ttl_s, expect) if follow else None
        try:
            tensors = record.decode(key.redis_key, raw, self.keyring)
            check_tensors(expect, tensors)
        except (record.RecordError, TensorMismatch) as exc:
            self.counters.corrupt_entries += 1
            log.warning("corrupt cache entry %s (%s); recomputing", key.redis_key, exc)
            await self._best_effort(self.store.delete(key.redis_key))
            return None
        conditioning = Conditioning(key.encoder, key.weights_digest, key.redis_key, tensors)
        self.local.put(conditioning)
        self._slide_later(key.redis_key, ttl_s)
        return conditioning, CacheTier.REDIS

    async def _follow(
        self, key: ConditioningKey, raw: bytes, ttl_s: int, expect: Sequence[TensorSpec]
    ) -> tuple[Conditioning, CacheTier] | None:
        try:
            target = keys.with_content(key, alias.decode(key.redis_key, raw, self.keyring))
        except record.RecordError as exc:
            self.counters.corrupt_entries += 1
            log.warning("corrupt alias %s (%s); recomputing", key.redis_key, exc)
            await self._best_effort(self.store.delete(key.redis_key))
            return None
        found = None if target == key else await self.lookup(target, ttl_s, expect, follow=False)
        if found is None:
            # The entry it pointed at expired or was evicted: drop the alias, so the miss that
            # follows can store a full entry here (writes are NX and would keep the alias).
            await self._best_effort(self.store.delete(key.redis_key))
            return None
        self.counters.alias_hits += 1
        self.local.put(found[0], key.redis_key)
        return found[0], CacheTier.REDIS

    async def _shared(self, key: ConditioningKey, ttl_s: int, expect: Sequence[TensorSpec]) -> Conditioning | None:
        """The entry from the store (into L1), for a process waiting on another one's lease."""
        found = await self.lookup(key, ttl_s, expect)
        return None if found is None else found[0]

    async def unpin(self, redis_key: str) -> None:
        """Give a once-pinned entry the default TTL again (nothing references it any more)."""
        self._pinned.discard(redis_key)
        if self.write_back is not None:
            self.write_back.unpin(redis_key, self.default_ttl_s)
        await self._best_effort(self.store.expire(redis_key, self.default_ttl_s))

    async def count_shared_entries(self) -> int:
        """Keys in the shared store, or -1 when it cannot be asked."""
        try:
            return await self.store.dbsize()
        except StoreUnavailable:
            return -1

    @property
    def shared_available(self) -> bool:
        return self.store.available

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.leases is not None:
            await self.leases.close()
        await self.store.close()

    # -- internals ------------------------------------------------------------------------
    async def _ensure_pinned(self, conditioning: Conditioning, pin: bool) -> None:
        if pin and conditioning.cache_key not in self._pinned:
            await self._write(conditioning, None)

    async def _write(self, conditioning: Conditioning, ttl_s: int | None) -> None:
        value = record.encode(conditioning.cache_key, conditioning.tensors, self.keyring)
        try:
            await self.store.put(conditioning.cache_key, value, ttl_s)
        except StoreRefused:
            return  # a permission problem (logged by the store): waiting will not fix it, so no write-back
        except StoreUnavailable:
            # Counted and logged by the store; the request is served regardless, and the
            # entry is written when the store is back.
            self._write_later(conditioning.cache_key, value, ttl_s)
            return
        if ttl_s is None:
            self._mark_pinned(conditioning.cache_key)

    def _mark_pinned(self, redis_key: str) -> None:
        if len(self._pinned) > _BOOKKEEPING_LIMIT:
            self._pinned.clear()
        self._pinned.add(redis_key)

    def _write_later(self, redis_key: str, value: bytes, ttl_s: int | None) -> None:
        if self.write_back is None:
            return
        self.write_back.add(redis_key, value, ttl_s)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(self.write_back))
            self._background.add(self._drainer)
            self._drainer.add_done_callback(self._background.discard)

    async def _drain(self, queue: WriteBackQueue) -> None:
        """Every `drain_every_s`, write the queue oldest first until the store fails or it is empty.

        One task at a time, and only while entries wait: no polling when there was no outage.
        """
        while len(queue):
            await asyncio.sleep(queue.drain_every_s)
            while (pending := queue.oldest()) is not None:
                try:
                    await self.store.put(pending.key, pending.value, pending.ttl_s)
                except StoreUnavailable:
                    break  # still down: try again after the interval
                queue.done(pending)
                if pending.ttl_s is None:
                    self._mark_pinned(pending.key)
        log.info("write-back queue drained: %d entries written since start", queue.counters.written)

    def _slide_later(self, redis_key: str, ttl_s: int) -> None:
        """Refresh the shared TTL now and then, in the background: off the hit's round trip."""
        now = time.monotonic()
        if now - self._touched.get(redis_key, 0.0) < min(60.0, ttl_s / 10):
            return
        if len(self._touched) > _BOOKKEEPING_LIMIT:
            self._touched.clear()
        self._touched[redis_key] = now
        task = asyncio.create_task(self._slide(redis_key, ttl_s))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _slide(self, redis_key: str, ttl_s: int) -> None:
        await self._best_effort(self.store.slide(redis_key, ttl_s))

    @staticmethod
    async def _best_effort(operation: Awaitable[object]) -> None:
        try:
            await operation
        except StoreUnavailable:
            pass  # counted and logged by the store; the request is served regardless


async def _within(deadline: float | None, waiting: Awaitable[tuple[Any, bool]]) -> tuple[Any, bool]:
    """`waiting` until `deadline`; past it DeadlineExceeded (the work it waited for is shielded)."""
    if deadline is None:
        return await waiting
    try:
        return await asyncio.wait_for(waiting, max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        raise DeadlineExceeded(
            "the deadline passed while this miss waited for its extraction; it continues and is cached, "
            "so a retry will likely hit"
        ) from None
