"""Every worker's copy of each tenant's voice vectors, kept in step through Redis.

Redis holds the truth, per tenant: a hash of voice_id -> unit float32 vector per encoder
(and weights version), and a version counter bumped on every register or delete. A change
is written there, then announced on one pub/sub channel as `tenant, version, voice_id`;
a worker whose copy is exactly one version behind re-reads that one voice, any other gap
reloads the whole tenant. Pub/sub drops messages while a subscriber is disconnected, so a
worker also compares versions before a search at most every `--search-sync-s`, and marks
every copy stale whenever it (re)subscribes.

The first search of a tenant loads its vectors (one HGETALL) and its registry; a voice that
pins conditioning for the encoder but has no vector yet (registered before search existed,
or its vector write was lost) gets one from the cache (`vector_of`), written back for the
others. Redis trouble never fails a search that a copy can answer: the copy is served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from math import prod

import numpy as np

from services.common.errors import InvalidInput, Unavailable
from services.embedder.cache import keys
from services.embedder.cache.store import Store, StoreUnavailable
from services.embedder.encoders.base import Encoder
from services.embedder.voices.index import VectorIndex
from services.embedder.voices.model import Voice
from services.embedder.voices.registry import PAGE, VoiceRegistries, VoiceRegistry

log = logging.getLogger(__name__)

#: How long the first search waits for the change subscription before loading without it.
_SUBSCRIBE_WAIT_S = 1.0

#: Copies smaller than this are searched on the event loop (well under a millisecond); larger on a thread.
_INLINE_MAX = 20_000

#: Produces a voice's searched vector for an encoder from its cached conditioning (None: cannot).
VectorOf = Callable[[str, Voice, Encoder], Awaitable[np.ndarray | None]]


def searched_tensor(encoder: Encoder) -> tuple[str, int]:
    """Which of an encoder's tensors is searched, and its length.

    An encoder names it (`search_tensor`: IndexTTS2's CAMPPlus `style`, not its
    variable-length features); otherwise its only tensor, if that has a fixed size (ECAPA's
    `speaker`). Anything else cannot be compared by one cosine and is refused.
    """
    specs = {spec.name: spec for spec in encoder.tensors}
    name = getattr(encoder, "search_tensor", None)
    if name is None and len(specs) == 1:
        name = next(iter(specs))
    spec = specs.get(name) if name is not None else None
    if spec is None or any(d is None for d in spec.shape):
        raise InvalidInput(f"encoder {encoder.name!r} has no single fixed-size vector to search by", field="encoder")
    return spec.name, prod(d for d in spec.shape if d is not None)


@dataclass
class _Copy:
    """One tenant's vectors of one encoder as this worker has them."""

    index: VectorIndex
    #: The shared version the copy reflects; None when it was built without Redis.
    version: int | None
    checked_at: float
    stale: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class VoiceIndexes:
    """This worker's copies, one per (tenant, encoder), made on first search."""

    def __init__(
        self,
        store: Store,
        registries: VoiceRegistries,
        vector_of: VectorOf,
        *,
        prefix: str,
        sync_s: float,
    ) -> None:
        self._store = store
        self._registries = registries
        self._vector_of = vector_of
        self._prefix = prefix
        self._sync_s = sync_s
        self._copies: dict[tuple[str, str], _Copy] = {}
        self._encoders: dict[str, Encoder] = {}
        self._listener: asyncio.Future[None] | None = None
        self._subscribed = asyncio.Event()
        #: Full loads done (first use, a missed change, a stale copy): for tests and stats.
        self.reloads = 0

    # -- searching ---------------------------------------------------------------------------
    async def index(self, tenant: str, encoder: Encoder) -> VectorIndex:
        """The tenant's current vectors for `encoder`: loaded on first use, checked against the
        shared version at most every `sync_s` (or at once when a change was missed)."""
        await self._listen()
        self._encoders[encoder.name] = encoder
        copy = self._copies.get((tenant, encoder.name))
        if copy is None:
            copy = self._copies.setdefault((tenant, encoder.name), await self._load(tenant, encoder, None))
        if copy.stale or time.monotonic() - copy.checked_at >= self._sync_s:
            async with copy.lock:
                await self._refresh(tenant, encoder, copy)
        return copy.index

    async def search(
        self, tenant: str, encoder: Encoder, query: np.ndarray, k: int, *, exclude: str | None = None
    ) -> tuple[list[tuple[str, float]], int]:
        """`VectorIndex.search` on the tenant's current copy, and how many voices it compared.

        Held under the copy's lock, so no change moves rows mid-search; a large copy is searched
        on a worker thread (numpy releases the GIL), so it never stalls the event loop's other calls.
        """
        await self.index(tenant, encoder)  # loaded and fresh
        copy = self._copies[(tenant, encoder.name)]
        async with copy.lock:
            index = copy.index
            if len(index) < _INLINE_MAX:
                found = index.search(query, k, exclude=exclude)
            else:
                found = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: index.search(query, k, exclude=exclude)
                )
            return found, len(index) - (exclude is not None and exclude in index)

    # -- changes made by this worker -------------------------------------------------------
    async def changed(self, tenant: str, voice_id: str, vectors: dict[Encoder, np.ndarray | None]) -> None:
        """Record `voice_id`'s new vector per encoder (None: it has none, or it was deleted) in Redis,
        announce the change to the other workers and apply it to this worker's copies. Best effort
        in Redis: a lost write is found by the next load (the registry is compared) and a lost
        announcement by the version check."""
        scope = self._scope(tenant)
        version: int | None = None
        try:
            for encoder, vector in vectors.items():
                key = keys.voice_vectors(scope, encoder.name, encoder.weights_digest)
                if vector is None:
                    await self._store.hdel(key, voice_id)
                else:
                    await self._store.hset(key, voice_id, _as_bytes(vector), only_new=False)
            version = await self._store.incr(keys.voices_version(scope))
            await self._store.publish(keys.voice_changes(self._prefix), _announcement(tenant, version, voice_id))
        except StoreUnavailable:
            log.debug("voice change of %r not recorded in Redis; other workers find it by their next load", voice_id)
        by_name = {encoder.name: vector for encoder, vector in vectors.items()}
        for (copy_tenant, name), copy in list(self._copies.items()):
            if copy_tenant != tenant:
                continue
            async with copy.lock:
                if name in by_name:
                    _apply(copy.index, voice_id, by_name.get(name))
                self._advance(copy, version)

    def figures(self) -> dict[str, int]:
        """For GetStats and /metrics: voices and matrix bytes held, and full loads made."""
        copies = list(self._copies.values())
        return {
            "indexed_voices": sum(len(copy.index) for copy in copies),
            "index_bytes": sum(copy.index.nbytes for copy in copies),
            "index_loads": self.reloads,
        }

    # -- lifecycle -----------------------------------------------------------------------------
    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
            self._listener = None

    # -- internals -------------------------------------------------------------------------------
    def _scope(self, tenant: str) -> str:
        return keys.scope(self._prefix, tenant)

    async def _listen(self) -> None:
        """Subscribe once, before the first load, so that load misses no announcement (up to
        `_SUBSCRIBE_WAIT_S`: without Redis, the version check is left to catch up)."""
        if self._listener is not None:
            return
        self._listener = asyncio.get_running_loop().create_task(
            self._store.listen(keys.voice_changes(self._prefix), self._on_message, self._on_subscribed)
        )
        waiter = asyncio.ensure_future(self._subscribed.wait())
        await asyncio.wait({waiter, self._listener}, timeout=_SUBSCRIBE_WAIT_S)
        waiter.cancel()

    def _on_subscribed(self) -> None:
        """Whatever was announced while unsubscribed is lost: every copy checks its version."""
        for copy in self._copies.values():
            copy.stale = True
        self._subscribed.set()

    async def _on_message(self, message: bytes) -> None:
        try:
            tenant, version_text, voice_id = message.decode().split("\n")
            version = int(version_text)
        except ValueError:
            log.warning("ignored a malformed voice change announcement %r", message[:100])
            return
        for (copy_tenant, name), copy in list(self._copies.items()):
            if copy_tenant != tenant or (copy.version is not None and version <= copy.version):
                continue
            encoder = self._encoders[name]
            async with copy.lock:
                if copy.version is None or version != copy.version + 1:
                    copy.stale = True  # a gap: changes in between were missed
                    continue
                key = keys.voice_vectors(self._scope(tenant), name, encoder.weights_digest)
                try:
                    raw = await self._store.hget(key, voice_id)
                except StoreUnavailable:
                    copy.stale = True
                    continue
                _apply(copy.index, voice_id, _from_bytes(raw, copy.index.dim))
                copy.version = version

    @staticmethod
    def _advance(copy: _Copy, version: int | None) -> None:
        """After this worker's own change: one version ahead stays in step, any other gap reloads."""
        if version is None:
            return
        if copy.version is not None and version == copy.version + 1:
            copy.version = version
        elif copy.version is None or version > copy.version:
            copy.stale = True

    async def _refresh(self, tenant: str, encoder: Encoder, copy: _Copy) -> None:
        try:
            raw = await self._store.get(keys.voices_version(self._scope(tenant)))
        except StoreUnavailable:
            copy.checked_at = time.monotonic()
            return  # fail open: serve the copy, check again later
        version = int(raw) if raw is not None else 0
        if version != copy.version or copy.stale:
            fresh = await self._load(tenant, encoder, copy)
            copy.index, copy.version = fresh.index, fresh.version
        copy.stale = False
        copy.checked_at = time.monotonic()

    async def _load(self, tenant: str, encoder: Encoder, previous: _Copy | None) -> _Copy:
        """The tenant's vectors as Redis has them (a page at a time), completed from the registry
        and the cache when it counts more voices than there are vectors."""
        _, dim = searched_tensor(encoder)
        scope = self._scope(tenant)
        key = keys.voice_vectors(scope, encoder.name, encoder.weights_digest)
        index = VectorIndex(dim)
        version: int | None
        try:
            # The version is read before the data: a change in between makes the copy look
            # older than it is (one more load), never newer.
            raw_version = await self._store.get(keys.voices_version(scope))
            version = int(raw_version) if raw_version is not None else 0
            cursor = 0
            while True:
                cursor, page = await self._store.hscan(key, cursor, PAGE)
                for voice_id, raw in page.items():
                    _apply(index, voice_id.decode(), _from_bytes(raw, dim))
                if cursor == 0:
                    break
        except StoreUnavailable:
            if previous is not None:
                return previous
            version, index = None, VectorIndex(dim)
        registry = self._registries.of(tenant)
        try:
            if await registry.count() != len(index):
                await self._reconcile(tenant, encoder, registry, index, key)
        except Unavailable:
            if previous is not None:
                return previous
            if version is None:
                raise
        self.reloads += 1
        return _Copy(index, version, time.monotonic())

    async def _reconcile(
        self, tenant: str, encoder: Encoder, registry: VoiceRegistry, index: VectorIndex, key: str
    ) -> None:
        """Index the voices that have no vector yet (from their cached conditioning, written back
        for the other workers) and drop vectors whose voice is gone."""
        registered: set[str] = set()
        async for page in registry.pages():
            for voice in page:
                registered.add(voice.voice_id)
                if voice.voice_id in index or encoder.name not in voice.pinned:
                    continue
                vector = await self._vector_of(tenant, voice, encoder)
                if vector is None:
                    continue
                _apply(index, voice.voice_id, vector)
                unit = index.vector(voice.voice_id)
                if unit is not None:
                    try:
                        await self._store.hset(key, voice.voice_id, _as_bytes(unit), only_new=False)
                    except StoreUnavailable:
                        pass
        for voice_id in [v for v in index.ids() if v not in registered]:
            index.remove(voice_id)
            try:
                await self._store.hdel(key, voice_id)
            except StoreUnavailable:
                pass


def _apply(index: VectorIndex, voice_id: str, vector: np.ndarray | None) -> None:
    if vector is None:
        index.remove(voice_id)
        return
    try:
        index.add(voice_id, vector)
    except ValueError as exc:  # a vector of another length or a zero vector: not searchable
        log.warning("voice %r not indexed: %s", voice_id, exc)
        index.remove(voice_id)


def _as_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").reshape(-1).tobytes()


def _from_bytes(raw: bytes | None, dim: int) -> np.ndarray | None:
    if raw is None or len(raw) != 4 * dim:
        return None
    return np.frombuffer(raw, dtype="<f4")


def _announcement(tenant: str, version: int, voice_id: str) -> bytes:
    return f"{tenant}\n{version}\n{voice_id}".encode()
