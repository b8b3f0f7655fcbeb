"""Entries (and pins) that could not reach the shared store, kept to write when it is back.

Fail-open serves a miss computed while Redis is down, but without this queue the entry
would stay in one worker's L1: every other worker recomputes it, and a registered voice's
pin never reaches Redis. The queue is bounded in entries and bytes (an outage must not
grow memory without limit); past a bound the oldest entry is dropped and counted, since it
can always be recomputed. A key queued twice keeps one slot: the newer value, pinned if
either write was a pin (a pin must never be downgraded to a TTL by a later plain write).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class PendingWrite:
    key: str
    value: bytes
    #: None pins the entry (no TTL), as in Store.put.
    ttl_s: int | None


@dataclass
class WriteBackCounters:
    written: int = 0
    dropped: int = 0


class WriteBackQueue:
    """Oldest first; bounded by `max_entries` and `max_bytes` (values only).

    `drain_every_s`: how often the owner retries while entries wait (the store's own retry
    interval: sooner would only meet a store still marked down).
    """

    def __init__(self, *, max_entries: int, max_bytes: int, drain_every_s: float) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.drain_every_s = drain_every_s
        self.counters = WriteBackCounters()
        self._items: OrderedDict[str, PendingWrite] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def add(self, key: str, value: bytes, ttl_s: int | None) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old.value)
            if old.ttl_s is None:
                ttl_s = None  # once pinned, stays pinned
        self._items[key] = PendingWrite(key, value, ttl_s)
        self._bytes += len(value)
        while self._items and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
            self._remove(next(iter(self._items)))
            self.counters.dropped += 1

    def unpin(self, key: str, ttl_s: int) -> None:
        """A pin released before it reached the store: write it with a TTL instead."""
        pending = self._items.get(key)
        if pending is not None and pending.ttl_s is None:
            self._items[key] = PendingWrite(key, pending.value, ttl_s)

    def oldest(self) -> PendingWrite | None:
        return next(iter(self._items.values()), None)

    def done(self, write: PendingWrite) -> None:
        """`write` reached the store; forget it unless a newer write of its key replaced it meanwhile."""
        if self._items.get(write.key) is write:
            self._remove(write.key)
            self.counters.written += 1

    def _remove(self, key: str) -> None:
        self._bytes -= len(self._items.pop(key).value)


def write_back_figures(queue: WriteBackQueue | None) -> dict[str, int]:
    """The queue's gauges and counters for a snapshot; zeros when there is no queue (no store)."""
    if queue is None:
        return {"write_back_pending": 0, "write_back_bytes": 0, "write_back_written": 0, "write_back_dropped": 0}
    return {
        "write_back_pending": len(queue),
        "write_back_bytes": queue.nbytes,
        "write_back_written": queue.counters.written,
        "write_back_dropped": queue.counters.dropped,
    }
