"""Counters across every Embedder worker on one Redis and prefix, for GetStats.

With `--workers N` (or several Embedders behind a load balancer) a GetStats call lands on
one worker, but its caller asks about the service: how many requests, hits, extractions.
So each worker writes its counters, every `every_s`, into one Redis hash (worker id -> JSON
with the time it was written), and GetStats answers the answering worker's own live
counters plus every other worker's last record that is fresher than `3 * every_s`.
Records older than that (a worker that died or left) are not counted and are deleted.

Summed: counts of requests, hits, misses, errors, extractions, coalesced and peer-filled
misses, lease takeovers, Redis errors, corrupt entries, forward passes, write-back figures
and L1 sizes. Not summed, the answering worker's own: latency percentiles (percentiles do
not add), Redis availability and encoder runtimes; `worker` says which one answered.
Redis down: the answer is the answering worker's alone (`workers` = 1), never an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace

from services.embedder.cache.store import Store, StoreUnavailable
from services.embedder.metrics import EmbedderSnapshot

log = logging.getLogger(__name__)

#: The EmbedderSnapshot fields that add up across workers.
SUMMED = (
    "requests",
    "local_hits",
    "redis_hits",
    "misses",
    "errors",
    "extractions",
    "redis_errors",
    "dropped_extractions",
    "coalesced",
    "corrupt_entries",
    "local_entries",
    "local_bytes",
    "local_capacity_bytes",
    "write_back_pending",
    "write_back_bytes",
    "write_back_written",
    "write_back_dropped",
    "forward_passes",
    "batched_clips",
    "peer_fills",
    "lease_takeovers",
)
#: A record this many publishing intervals old belongs to a worker that is gone.
STALE_AFTER = 3


class Fleet:
    def __init__(self, store: Store, hash_key: str, worker: str, every_s: float) -> None:
        self.store = store
        self.hash_key = hash_key
        self.worker = worker
        self.every_s = every_s

    def record(self, snapshot: EmbedderSnapshot) -> bytes:
        counters = {name: value for name, value in asdict(snapshot).items() if name in SUMMED}
        return json.dumps({"at": time.time(), **counters}).encode()

    async def publish(self, snapshot: EmbedderSnapshot) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self.store.hset(self.hash_key, self.worker, self.record(snapshot), only_new=False)

    async def publish_forever(self, snapshot: Callable[[], EmbedderSnapshot]) -> None:
        """Every `every_s`, this worker's counters into the hash (`snapshot`: Embedder.snapshot)."""
        while True:
            await self.publish(snapshot())
            await asyncio.sleep(self.every_s)

    async def totals(self, own: EmbedderSnapshot) -> EmbedderSnapshot:
        """`own` with every live worker's counters added, and `workers` set to how many they are."""
        try:
            records = await self.store.hgetall(self.hash_key)
        except StoreUnavailable:
            return replace(own, worker=self.worker, workers=1)
        now, sums, live = time.time(), {name: getattr(own, name) for name in SUMMED}, 1
        for raw_worker, raw in records.items():
            worker = raw_worker.decode()
            if worker == self.worker:
                continue
            try:
                other = json.loads(raw)
                fresh = now - float(other["at"]) <= STALE_AFTER * self.every_s
            except (ValueError, KeyError, TypeError):
                fresh, other = False, {}
            if not fresh:
                with contextlib.suppress(StoreUnavailable):
                    await self.store.hdel(self.hash_key, worker)
                continue
            live += 1
            for name in SUMMED:
                sums[name] += int(other.get(name, 0))
        return replace(own, worker=self.worker, workers=live, **sums)

    async def leave(self) -> None:
        """At shutdown: this worker's record goes, so the others stop counting it at once."""
        with contextlib.suppress(StoreUnavailable):
            await self.store.hdel(self.hash_key, self.worker)
