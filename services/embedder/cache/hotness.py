"""Which entries are hot, shared through Redis, so a restarted worker starts with a warm L1.

Tracking: every answered request counts its entry in a dict in memory (a dict increment is
all the hit path pays); every `--hotness-flush-s` a background task adds the counts to one
sorted set per prefix (`keys.hot`: every tenant's and encoder's conditioning keys) in one
pipelined round trip, trims it to the `--warm-start-entries` highest, and, once per hour
across all workers, halves every score, so yesterday's hot clips give way to today's.
Redis's own LFU counters were the alternative; they need `maxmemory-policy *-lfu`, a SCAN of
every key and an `OBJECT FREQ` per key at start, and they do not see L1 hits at all.

Warming (`warm`): before the server says SERVING, read the set highest first, fetch the
entries in batches with plain GETs (TTLs untouched), verify each like any store hit, and
fill L1 until its byte budget, the entry count or the time bound is reached. Entries are put
coldest first, so the hottest end up the most recently used. Redis down or slow: the worker
starts cold, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from services.embedder.cache import alias, keys, record
from services.embedder.cache.store import StoreUnavailable
from services.embedder.cache.tiered import TieredCache
from services.embedder.conditioning import Conditioning, TensorMismatch, check_tensors
from services.embedder.encoders.base import Encoder

log = logging.getLogger(__name__)

#: Scores halve once per this period (shared by all workers through a marker key).
HALF_LIFE_S = 3600
#: Counts kept in memory before an early flush; past twice this (Redis down) they are dropped.
_MAX_PENDING = 50_000
#: Entries fetched per round trip while warming.
_BATCH = 256


class Hotness:
    """Counts requests per entry and adds them to the shared sorted set now and then."""

    def __init__(self, cache: TieredCache, prefix: str, *, flush_every_s: float, keep: int) -> None:
        self.cache = cache
        self.key = keys.hot(prefix)
        self._decay_key = f"{self.key}:halved"
        self.flush_every_s = flush_every_s
        self.keep = keep
        self._counts: dict[str, int] = {}
        self._flusher: asyncio.Task[None] | None = None
        #: Counts written to Redis since start (sum of increments), for tests and GetStats.
        self.flushed = 0

    @property
    def enabled(self) -> bool:
        return self.flush_every_s > 0 and self.keep > 0

    def record(self, redis_key: str) -> None:
        """One request answered by this entry. Synchronous and cheap: the hit path calls it."""
        if not self.enabled:
            return
        self._counts[redis_key] = self._counts.get(redis_key, 0) + 1
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._run())
        elif len(self._counts) > 2 * _MAX_PENDING:
            self._counts.clear()  # Redis has been down a long time: forget rather than grow

    async def flush(self) -> None:
        counts, self._counts = self._counts, {}
        if not counts:
            return
        try:
            await self.cache.store.add_scores(
                self.key, counts, keep=self.keep, decay_key=self._decay_key, half_life_s=HALF_LIFE_S
            )
        except StoreUnavailable:
            for key, count in counts.items():  # keep them for the next flush
                self._counts[key] = self._counts.get(key, 0) + count
            return
        self.flushed += sum(counts.values())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every_s)
            await self.flush()

    async def close(self) -> None:
        """Stop flushing; the last counts are written if the store answers."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self.flush()


@dataclass(frozen=True)
class WarmStart:
    entries: int = 0
    bytes: int = 0
    ms: float = 0.0


async def warm(
    cache: TieredCache, hot_key: str, encoders: Collection[Encoder], *, max_entries: int, budget_s: float
) -> WarmStart:
    """Fill L1 with the hottest entries of loaded encoders, within its byte budget and `budget_s`."""
    started = time.perf_counter()
    deadline = time.monotonic() + budget_s
    by_key_part = {(e.name, e.weights_digest[: keys.DIGEST_CHARS]): e for e in encoders}
    room = cache.local.capacity_bytes - cache.local.nbytes
    chosen: list[Conditioning] = []
    gone: list[str] = []
    try:
        ranked = await asyncio.wait_for(cache.store.top(hot_key, max_entries), budget_s)
        candidates = [k for k in ranked if keys.encoder_of(k) in by_key_part]
        for start in range(0, len(candidates), _BATCH):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or room <= 0:
                break
            batch = candidates[start : start + _BATCH]
            values = await asyncio.wait_for(cache.store.get_many(batch), remaining)
            for redis_key, value in zip(batch, values, strict=True):
                if value is None:
                    gone.append(redis_key)
                    continue
                if alias.is_alias(value):
                    continue  # counted under its target's key; nothing to load here
                encoder = by_key_part[keys.encoder_of(redis_key)]  # type: ignore[index]
                try:
                    tensors = record.decode(redis_key, value, cache.keyring)
                    check_tensors(encoder.tensors, tensors)
                except (record.RecordError, TensorMismatch):
                    continue  # a request will meet it, count it and replace it
                conditioning = Conditioning(encoder.name, encoder.weights_digest, redis_key, tensors)
                if conditioning.nbytes > room:
                    room = 0
                    break
                room -= conditioning.nbytes
                chosen.append(conditioning)
        if gone:
            await cache.store.remove_members(hot_key, gone)  # expired or evicted: not hot any more
    except (StoreUnavailable, TimeoutError) as exc:
        log.warning("warm start stopped early (%s): %d entries loaded", exc, len(chosen))
    for conditioning in reversed(chosen):  # the hottest last: the most recently used in the LRU
        cache.local.put(conditioning)
    result = WarmStart(len(chosen), sum(c.nbytes for c in chosen), (time.perf_counter() - started) * 1000)
    log.info("warm start: %d hot entries (%d bytes) in L1 in %.0f ms", result.entries, result.bytes, result.ms)
    return result
