"""Registered voices live only in Redis, so they must survive a restart of Redis itself.

Real redis-server processes on tmp data folders, started from the shipped
deploy/redis/redis.conf (the AOF settings under test), killed with SIGKILL as a crash
would, and started again on the same port and folder.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from services.common.errors import Unavailable
from services.common.redis_server import FolderInUse, LocalRedis
from services.embedder import server as embedder_server
from services.embedder.cache.tiered import CacheTier
from services.embedder.settings import EmbedderSettings
from services.embedder.voices import Voice
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from tests.conftest import CountingEncoder, make_core

VOICES = ("ana", "ben", "cleo")


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    """One distinct clip per voice (their conditioning entries are distinct keys)."""
    out = {}
    for voice, sentence, accent in zip(VOICES, SENTENCES, ("en-us", "en-gb", "en-us"), strict=True):
        samples, rate = espeak(sentence, voice=accent)
        out[voice] = encode(fit_duration(samples, rate, 2.0), rate)
    return out


async def test_voices_survive_a_killed_redis(tmp_path: Path, encoder: CountingEncoder, clips: dict[str, bytes]) -> None:
    own = LocalRedis(data_dir=tmp_path / "redis").start()
    # voice_cache_s=0: every lookup by name asks Redis, so no worker's memory can answer for it.
    core = make_core(encoder, own.url, "durable", voice_cache_s=0.0)
    fresh = None
    try:
        for voice, clip in clips.items():
            await core.register_voice(voice, clip)
        extractions = encoder.calls
        # appendfsync everysec: a crash may lose the last ~2 s of writes (a write is postponed while
        # the previous second's fsync runs), which is the documented price of not fsyncing every write.
        await asyncio.sleep(2.5)
        own.kill()  # a crash: no shutdown, no final save
        own.start()  # the same port, the same folder: only the AOF can bring the voices back
        await asyncio.sleep(0.3)  # past the retry interval of a store that may have seen the outage
        for voice in VOICES:
            assert (await core.embed(voice_id=voice)).cache_hit
        fresh = make_core(encoder, own.url, "durable", voice_cache_s=0.0)  # a new worker: empty L1, no voices seen
        for voice in VOICES:
            answer = await fresh.embed(voice_id=voice)
            assert answer.tier is CacheTier.REDIS  # the registry and the pinned conditioning both came back
        assert sorted(v.voice_id for v in await fresh.list_voices()) == sorted(VOICES)
        assert encoder.calls == extractions  # nothing was re-derived
    finally:
        await core.close()
        if fresh is not None:
            await fresh.close()
        own.close()


async def _find_when_reachable(running: embedder_server.RunningEmbedder, voice_id: str) -> Voice | None:
    """The registry's answer once Redis is reachable again (the first call after a restart may
    land on a connection the old server closed; the store then skips Redis for --redis-retry-s)."""
    for _ in range(50):
        try:
            return await running.core.voices.of("").find(voice_id)
        except Unavailable:
            await asyncio.sleep(0.2)
    raise AssertionError("Redis did not come back")


def _settings(data_dir: str) -> EmbedderSettings:
    return replace(EmbedderSettings(), port=0, metrics_port=0, redis_url="", redis_data_dir=data_dir, cache_prefix="p")


async def test_the_embedders_private_redis_keeps_voices_in_its_data_folder(
    tmp_path: Path, encoder: CountingEncoder, clips: dict[str, bytes]
) -> None:
    folder = tmp_path / "embedder-redis"
    running = await embedder_server.start(_settings(str(folder)), encoders={"ecapa": encoder})
    try:
        assert running.private_redis is not None and running.private_redis.dir == folder
        await running.core.register_voice("ana", clips["ana"])
        running.private_redis.stop()  # SIGTERM, as `docker compose restart` sends: nothing may be lost
        running.private_redis.start()
        running.core.voices.of("")._seen.clear()  # type: ignore[attr-defined]  # forget it here: Redis must answer
        assert (await _find_when_reachable(running, "ana")) is not None
    finally:
        await running.stop()
    # A new Embedder process on the same folder: a fresh core and a fresh redis-server.
    again = await embedder_server.start(_settings(str(folder)), encoders={"ecapa": encoder})
    try:
        extractions = encoder.calls
        # The kept Redis answers: its hot entries are already in L1 after the warm start.
        assert again.core.warmed.entries == 1
        assert (await again.core.embed(voice_id="ana")).tier is CacheTier.LOCAL
        assert encoder.calls == extractions
    finally:
        await again.stop()


async def test_a_data_folder_in_use_is_refused_and_the_embedder_falls_back(
    tmp_path: Path, encoder: CountingEncoder
) -> None:
    folder = tmp_path / "shared"
    first = LocalRedis(data_dir=folder).start()
    try:
        with pytest.raises(FolderInUse, match="in use"):
            LocalRedis(data_dir=folder).start()
        second = await embedder_server.start(_settings(str(folder)), encoders={"ecapa": encoder})
        try:
            assert second.private_redis is not None and not second.private_redis.persistent
        finally:
            await second.stop()
    finally:
        first.close()
    throwaway = await embedder_server.start(_settings("none"), encoders={"ecapa": encoder})
    try:
        assert throwaway.private_redis is not None and not throwaway.private_redis.persistent
    finally:
        await throwaway.stop()


def test_throwaway_redis_writes_no_aof_and_data_folders_do(tmp_path: Path) -> None:
    with LocalRedis() as throwaway:
        assert "--appendonly" in throwaway.command and not (throwaway.dir / "appendonlydir").exists()
    kept = LocalRedis(data_dir=tmp_path / "kept").start()
    kept.close()
    assert (tmp_path / "kept" / "appendonlydir").is_dir()  # from the shipped redis.conf alone
