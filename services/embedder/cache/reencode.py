"""Re-encoding-proof keys: one extraction per sound, whatever container its bytes came in.

Entries are keyed by the upload's bytes (hashing bytes is what keeps a hit free of decoding),
so the same samples sent as WAV and then FLAC, with an extra chunk, or as 24-bit instead of
16-bit PCM, would each miss and each cost a forward pass. This module is the miss path's
second chance, after the clip is decoded and before the model runs:

- every entry computed from a clip gets a PCM index: `keys.pcm(key, pcm digest)` holds an
  alias (cache/alias.py) naming the entry's content digest, with the entry's TTL;
- a miss whose canonical PCM (audio.read, keys.pcm_digest) is already indexed, and whose
  indexed entry still exists, is answered with that entry, and its own bytes key becomes an
  alias of it: the next upload of those bytes is a store hit (TieredCache follows the alias)
  that decodes nothing.

Everything here is best effort: a store that is down or an index that points at an entry
that is gone just lets the miss extract as before. Both keys live in the caller's tenant
scope, beside the entry (keys.pcm), so nothing is shared across tenants or model versions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from services.embedder.cache import alias, keys
from services.embedder.cache.keys import ConditioningKey
from services.embedder.cache.record import RecordError
from services.embedder.cache.store import StoreUnavailable
from services.embedder.cache.tiered import CachePolicy, TieredCache
from services.embedder.conditioning import Conditioning, TensorSpec

log = logging.getLogger(__name__)


@dataclass
class ReencodeCounters:
    #: Misses answered with an entry computed from the same samples in other bytes.
    aliases_created: int = 0
    #: PCM indexes written (one per extracted entry).
    indexed: int = 0


class PcmIndex:
    def __init__(self, cache: TieredCache, *, enabled: bool) -> None:
        self.cache = cache
        self.enabled = enabled
        self.counters = ReencodeCounters()

    async def find(
        self, key: ConditioningKey, pcm_key: str, policy: CachePolicy, expect: Sequence[TensorSpec]
    ) -> Conditioning | None:
        """The entry already computed from these samples, with `key` made an alias of it; None
        when there is none (or the store cannot say)."""
        store = self.cache.store
        try:
            raw = await store.get(pcm_key)
        except StoreUnavailable:
            return None
        if raw is None:
            return None
        try:
            target = keys.with_content(key, alias.decode(pcm_key, raw, self.cache.keyring))
        except RecordError as exc:
            log.warning("corrupt PCM index %s (%s); ignoring it", pcm_key, exc)
            return None  # rewritten by `remember` once this miss is extracted
        if target == key:
            return None  # the index names this very key, whose entry is gone: extract it again
        found = await self.cache.lookup(target, policy.ttl_s, expect, follow=False)
        if found is None:
            return None
        value = alias.encode(key.redis_key, keys.content_of(target), self.cache.keyring)
        try:
            await store.put(key.redis_key, value, None if policy.pin else policy.ttl_s)
        except StoreUnavailable:
            pass  # served all the same; the next upload of these bytes finds the index again
        self.counters.aliases_created += 1
        return found[0]

    async def remember(self, key: ConditioningKey, pcm_key: str, policy: CachePolicy) -> None:
        """Index a freshly extracted entry by its samples, replacing an index that named a lost one."""
        value = alias.encode(pcm_key, keys.content_of(key), self.cache.keyring)
        try:
            await self.cache.store.put(pcm_key, value, policy.ttl_s, replace=True)
        except StoreUnavailable:
            return
        self.counters.indexed += 1
