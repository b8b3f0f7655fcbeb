"""Where registered voices live: one interface, a Redis registry and an in-memory one.

The Embedder asks the same questions whether voices are shared through Redis or kept in
this process; only the answers' durability differs. Domain errors only: `Unavailable`
when the registry cannot be asked, `AlreadyExists` when a concurrent register won.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from services.common.errors import AlreadyExists, Unavailable
from services.embedder.cache import keys
from services.embedder.cache.store import Store, StoreRefused, StoreUnavailable
from services.embedder.voices.model import Voice

#: Fields per HSCAN round trip when a whole hash is read a page at a time.
PAGE = 1000


def _reason(exc: BaseException | None) -> str:
    """Why Redis did not answer, in words: an outage and an ACL refusal need different fixes."""
    if isinstance(exc, StoreRefused):
        return f"refused the command, a permission problem ({exc})"
    return "is unreachable"


class VoiceRegistry(Protocol):
    async def find(self, voice_id: str) -> Voice | None:
        """The registry's current answer (Unavailable when it cannot be asked)."""
        ...

    async def resolve(self, voice_id: str) -> Voice | None:
        """For serving by name: may answer from a recent local copy, and falls back to the
        last copy seen while the registry is unreachable (Unavailable only if there is none)."""
        ...

    def recent(self, voice_id: str) -> Voice | None:
        """The copy `resolve` would answer without asking anyone, or None (then ask `resolve`).

        Synchronous so a hit by voice_id resolves its voice without awaiting a coroutine."""
        ...

    async def save(self, voice: Voice, audio: bytes, *, overwrite: bool) -> None:
        """Store the voice and its reference audio; AlreadyExists if one appeared meanwhile."""
        ...

    async def update(self, voice: Voice) -> None:
        """Rewrite a voice's metadata (its pins), best effort: a lost update is redone on next use."""
        ...

    async def remove(self, voice_id: str) -> None: ...

    async def all(self) -> list[Voice]: ...

    async def count(self) -> int:
        """How many voices are registered (Unavailable when the registry cannot be asked)."""
        ...

    def pages(self) -> AsyncIterator[list[Voice]]:
        """Every voice, a page at a time: a registry of 100 k voices does not fit one short round trip."""
        ...

    async def many(self, voice_ids: Sequence[str]) -> list[Voice | None]:
        """Several voices in one round trip, in order (None: not registered). While the registry
        cannot be asked, the copies this process has seen, else a Voice carrying only its id."""
        ...

    async def audio(self, voice: Voice) -> bytes:
        """The voice's reference audio, to derive its conditioning for another encoder or again."""
        ...

    async def drop_audio(self, audio_sha256: str) -> None:
        """Forget reference audio that no voice uses any more, best effort."""
        ...


class MemoryVoiceRegistry:
    """Voices of this process only: for running without Redis. Lost on restart."""

    def __init__(self) -> None:
        self._voices: dict[str, Voice] = {}
        self._audio: dict[str, bytes] = {}

    async def find(self, voice_id: str) -> Voice | None:
        return self._voices.get(voice_id)

    resolve = find

    def recent(self, voice_id: str) -> Voice | None:
        return self._voices.get(voice_id)

    async def save(self, voice: Voice, audio: bytes, *, overwrite: bool) -> None:
        if voice.voice_id in self._voices and not overwrite:
            raise AlreadyExists(f"voice {voice.voice_id!r} was registered concurrently", field="voice_id")
        self._audio[voice.audio_sha256] = audio
        self._voices[voice.voice_id] = voice

    async def update(self, voice: Voice) -> None:
        self._voices[voice.voice_id] = voice

    async def remove(self, voice_id: str) -> None:
        self._voices.pop(voice_id, None)

    async def all(self) -> list[Voice]:
        return sorted(self._voices.values(), key=lambda v: v.voice_id)

    async def many(self, voice_ids: Sequence[str]) -> list[Voice | None]:
        return [self._voices.get(voice_id) for voice_id in voice_ids]

    async def count(self) -> int:
        return len(self._voices)

    async def pages(self) -> AsyncIterator[list[Voice]]:
        yield list(self._voices.values())

    async def audio(self, voice: Voice) -> bytes:
        data = self._audio.get(voice.audio_sha256)
        if data is None:
            raise Unavailable(f"reference audio of voice {voice.voice_id!r} is missing; register it again")
        return data

    async def drop_audio(self, audio_sha256: str) -> None:
        self._audio.pop(audio_sha256, None)


class RedisVoiceRegistry:
    """Voices shared by every worker: a Redis hash of JSON metadata plus one key per clip.

    Each worker keeps the voices it has seen for `trust_s` seconds, so a hit by voice_id
    costs no Redis round trip, and keeps serving them from that copy while Redis is down.
    A delete or overwrite on another worker therefore reaches this one within `trust_s`.
    """

    def __init__(self, store: Store, *, prefix: str, trust_s: float) -> None:
        self._store = store
        self._prefix = prefix
        self._trust_s = trust_s
        self._seen: dict[str, tuple[Voice, float]] = {}

    @property
    def _hash(self) -> str:
        return keys.voices(self._prefix)

    async def find(self, voice_id: str) -> Voice | None:
        try:
            raw = await self._store.hget(self._hash, voice_id)
        except StoreUnavailable as exc:
            raise Unavailable(f"voice registry (Redis) {_reason(exc)}") from exc
        if raw is None:
            self._seen.pop(voice_id, None)
            return None
        voice = Voice.from_json(raw)
        self._remember(voice)
        return voice

    def recent(self, voice_id: str) -> Voice | None:
        seen = self._seen.get(voice_id)
        return seen[0] if seen is not None and time.monotonic() - seen[1] < self._trust_s else None

    async def resolve(self, voice_id: str) -> Voice | None:
        found = self.recent(voice_id)
        if found is not None:
            return found
        seen = self._seen.get(voice_id)
        try:
            return await self.find(voice_id)
        except Unavailable as exc:
            if seen is None:
                raise Unavailable(
                    f"voice registry (Redis) {_reason(exc.__cause__)} and voice {voice_id!r} is not known to this "
                    "Embedder"
                ) from None
            return seen[0]  # fail open: the last record this process saw

    async def save(self, voice: Voice, audio: bytes, *, overwrite: bool) -> None:
        try:
            await self._store.put(keys.voice_audio(self._prefix, voice.audio_sha256), audio, None)
            created = await self._store.hset(self._hash, voice.voice_id, voice.to_json(), only_new=not overwrite)
        except StoreUnavailable as exc:
            raise Unavailable(
                f"voice registry (Redis) {_reason(exc)}; voice {voice.voice_id!r} not registered"
            ) from exc
        if not created:
            raise AlreadyExists(f"voice {voice.voice_id!r} was registered concurrently", field="voice_id")
        self._remember(voice)

    async def update(self, voice: Voice) -> None:
        self._remember(voice)
        try:
            await self._store.hset(self._hash, voice.voice_id, voice.to_json(), only_new=False)
        except StoreUnavailable:
            pass  # counted and logged by the store; the pin is recorded again on the next use

    async def remove(self, voice_id: str) -> None:
        try:
            await self._store.hdel(self._hash, voice_id)
        except StoreUnavailable as exc:
            raise Unavailable(f"voice registry (Redis) {_reason(exc)}; voice {voice_id!r} not deleted") from exc
        self._seen.pop(voice_id, None)

    async def all(self) -> list[Voice]:
        try:
            raw = await self._store.hgetall(self._hash)
        except StoreUnavailable as exc:
            raise Unavailable(f"voice registry (Redis) {_reason(exc)}") from exc
        return sorted((Voice.from_json(v) for v in raw.values()), key=lambda v: v.voice_id)

    async def count(self) -> int:
        try:
            return await self._store.hlen(self._hash)
        except StoreUnavailable as exc:
            raise Unavailable(f"voice registry (Redis) {_reason(exc)}") from exc

    async def pages(self) -> AsyncIterator[list[Voice]]:
        cursor = 0
        while True:
            try:
                cursor, raw = await self._store.hscan(self._hash, cursor, PAGE)
            except StoreUnavailable as exc:
                raise Unavailable(f"voice registry (Redis) {_reason(exc)}") from exc
            yield [Voice.from_json(value) for value in raw.values()]
            if cursor == 0:
                return

    async def many(self, voice_ids: Sequence[str]) -> list[Voice | None]:
        try:
            raw = await self._store.hmget(self._hash, voice_ids)
        except StoreUnavailable:
            # Fail open: the copy this process saw, else the bare name (a search hit stays a hit).
            return [
                seen[0] if (seen := self._seen.get(voice_id)) else Voice(voice_id, "", 0.0, 0) for voice_id in voice_ids
            ]
        return [None if value is None else Voice.from_json(value) for value in raw]

    async def audio(self, voice: Voice) -> bytes:
        try:
            data = await self._store.get(keys.voice_audio(self._prefix, voice.audio_sha256))
        except StoreUnavailable as exc:
            raise Unavailable(
                f"voice {voice.voice_id!r} must be re-derived but its audio is in Redis, which {_reason(exc)}"
            ) from exc
        if data is None:
            raise Unavailable(f"reference audio of voice {voice.voice_id!r} is missing; register it again")
        return data

    async def drop_audio(self, audio_sha256: str) -> None:
        try:
            await self._store.delete(keys.voice_audio(self._prefix, audio_sha256))
        except StoreUnavailable:
            pass  # counted and logged by the store

    def _remember(self, voice: Voice) -> None:
        self._seen[voice.voice_id] = (voice, time.monotonic())


class VoiceRegistries:
    """One registry per tenant, made on first use: each tenant's voices live under its own keys,
    so one tenant cannot list, use, overwrite or delete another's, whatever ids they choose."""

    def __init__(self, make: Callable[[str], VoiceRegistry]) -> None:
        self._make = make
        self._by_tenant: dict[str, VoiceRegistry] = {}

    def of(self, tenant: str) -> VoiceRegistry:
        registry = self._by_tenant.get(tenant)
        if registry is None:
            registry = self._by_tenant[tenant] = self._make(tenant)
        return registry
