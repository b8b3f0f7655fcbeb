"""L1: an LRU of decoded Conditioning bounded by tensor bytes, not entry count.

Entries are content-addressed and immutable, so an L1 copy is never stale; the
only reason to evict is memory. Used from the event loop thread only, hence no
lock.
"""

from __future__ import annotations

from collections import OrderedDict

from services.embedder.conditioning import Conditioning


class LocalCache:
    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._entries: OrderedDict[str, Conditioning] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> Conditioning | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, value: Conditioning, key: str | None = None) -> None:
        """Keep `value` under `key` (its own cache key by default; an alias's key holds its target's
        entry, counted again in full: the arrays are shared, so the count errs on the safe side)."""
        if not self.capacity_bytes:
            return  # L1 is off (--local-cache-mb 0)
        key = value.cache_key if key is None else key
        size = value.nbytes
        if size > self.capacity_bytes:
            return  # would evict everything and still not fit
        self.discard(key)
        self._entries[key] = value
        self._bytes += size
        while self._bytes > self.capacity_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes

    def discard(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes
