"""The Embedder core against a real redis-server and the real ECAPA weights, without gRPC."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest
import redis

from services.common.errors import InvalidInput, NotFound, Overloaded, Resource
from services.common.redis_server import LocalRedis
from services.embedder import audio as audio_mod
from services.embedder.cache import keys
from services.embedder.cache.tiered import CacheTier
from services.embedder.core import CacheOptions, Embedder
from tests.audio_fixtures import encode
from tests.conftest import CountingEncoder, make_core, raw_client


@pytest.fixture
def raw(redis_server: LocalRedis) -> redis.Redis:
    return raw_client(redis_server.url)


async def test_miss_then_hit_is_bit_identical_and_skips_model_and_decoder(
    core: Embedder, encoder: CountingEncoder, speech: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await core.embed(audio=speech["wav"])
    assert first.tier is CacheTier.COMPUTED and not first.cache_hit and encoder.calls == 1
    vector = first.conditioning.tensors["speaker"]
    assert vector.shape == (192,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)

    decodes = 0
    real_decode = audio_mod.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(audio_mod, "decode", counting_decode)
    second = await core.embed(audio=speech["wav"])
    assert second.cache_hit and second.tier is CacheTier.LOCAL
    assert second.conditioning.tensors["speaker"].tobytes() == vector.tobytes()
    assert encoder.calls == 1 and decodes == 0
    assert second.timings.decode_ms == 0 and second.timings.extract_ms == 0


async def test_hit_from_redis_in_a_second_process_is_bit_identical(
    core: Embedder, encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    first = await core.embed(audio=speech["wav"])
    other_worker = make_core(encoder, redis_server.url, prefix)  # empty L1, same Redis
    try:
        again = await other_worker.embed(audio=speech["wav"])
    finally:
        await other_worker.close()
    assert again.tier is CacheTier.REDIS and encoder.calls == 1
    assert again.conditioning.tensors["speaker"].tobytes() == first.conditioning.tensors["speaker"].tobytes()
    assert again.conditioning.cache_key == first.conditioning.cache_key


async def test_a_store_hit_is_answered_without_the_miss_machinery(
    core: Embedder, encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    """A store hit is answered like an L1 hit: not through `fetch` or `fill` (single-flight,
    leases, a compute closure and a policy), which only a miss needs."""
    await core.embed(audio=speech["wav"])
    other_worker = make_core(encoder, redis_server.url, prefix)

    async def miss_only(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a store hit went through the miss path")

    other_worker.cache.fill = miss_only  # type: ignore[method-assign]
    other_worker.cache.fetch = miss_only  # type: ignore[method-assign]
    try:
        again = await other_worker.embed(audio=speech["wav"])
    finally:
        await other_worker.close()
    assert again.tier is CacheTier.REDIS and again.cache_hit and encoder.calls == 1
    assert again.timings.cache_ms > 0


async def test_key_depends_on_bytes_encoder_and_weights(core: Embedder, speech: dict[str, Any]) -> None:
    result = await core.embed(audio=speech["wav"])
    key = result.conditioning.cache_key
    digest = keys.content_digest(speech["wav"])
    expected = keys.conditioning(core.settings.cache_prefix, "ecapa", result.conditioning.weights_digest, digest)
    assert key == expected.redis_key
    assert key.startswith(f"{core.settings.cache_prefix}:cond:ecapa:{result.conditioning.weights_digest[:8]}:")
    assert len(key) == len(core.settings.cache_prefix) + 45  # ":cond:ecapa:" + 8 hex + ":{" + 22 base64url + "}"
    assert keys.conditioning("p", "ecapa", "0" * 64, digest) != keys.conditioning("p", "ecapa", "1" * 64, digest)
    flipped = bytearray(speech["wav"])
    flipped[-1] ^= 1
    assert keys.content_digest(bytes(flipped)) != digest


async def test_a_voice_registered_before_blake3_keys_gets_its_digest_on_first_use(
    core: Embedder, speech: dict[str, Any], encoder: CountingEncoder
) -> None:
    voice, registered = await core.register_voice("legacy", speech["wav"])
    voices = core.voices.of("")
    voice.content_digest = ""  # as a voice stored by an older Embedder has none
    await voices.update(voice)
    result = await core.embed(voice_id="legacy")
    assert result.conditioning.cache_key == registered.conditioning.cache_key and encoder.calls == 1
    assert (await voices.find("legacy")).content_digest == keys.content_digest(speech["wav"])


async def slid_ttl(raw: redis.Redis, key: str) -> int:
    """The key's TTL once a background refresh has moved it past 500 s (or after ~1 s of waiting)."""
    for _ in range(100):  # the refresh is a background task: give it the loop
        if raw.ttl(key) > 500:
            break
        await asyncio.sleep(0.01)
    return int(raw.ttl(key))


async def test_default_ttl_custom_ttl_and_sliding(core: Embedder, raw: redis.Redis, speech: dict[str, Any]) -> None:
    key = (await core.embed(audio=speech["wav"])).conditioning.cache_key
    assert core.settings.default_ttl_s - 5 <= raw.ttl(key) <= core.settings.default_ttl_s
    raw.expire(key, 50)
    core.cache.local.discard(key)  # force the Redis path
    hit = await core.embed(audio=speech["wav"], options=CacheOptions(ttl_s=600))
    assert hit.tier is CacheTier.REDIS
    assert 590 <= await slid_ttl(raw, key) <= 600  # the hit slides it in the background, off its round trip


async def test_an_l1_hit_slides_the_redis_ttl_in_the_background(
    core: Embedder, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    key = (await core.embed(audio=speech["wav"])).conditioning.cache_key
    raw.expire(key, 50)
    hit = await core.embed(audio=speech["wav"], options=CacheOptions(ttl_s=600))
    assert hit.tier is CacheTier.LOCAL
    assert 590 <= await slid_ttl(raw, key) <= 600


async def test_pin_removes_expiry_and_hits_do_not_unpin(
    core: Embedder, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    key = (await core.embed(audio=speech["wav"], options=CacheOptions(pin=True))).conditioning.cache_key
    assert raw.ttl(key) == -1
    core.cache.local.discard(key)
    hit = await core.embed(audio=speech["wav"], options=CacheOptions(ttl_s=60))
    assert hit.tier is CacheTier.REDIS and raw.ttl(key) == -1


async def test_pin_on_a_hit_pins_the_existing_entry(core: Embedder, raw: redis.Redis, speech: dict[str, Any]) -> None:
    key = (await core.embed(audio=speech["wav"])).conditioning.cache_key
    assert raw.ttl(key) > 0
    await core.embed(audio=speech["wav"], options=CacheOptions(pin=True))
    assert raw.ttl(key) == -1


async def test_bypass_runs_the_model_and_stores_nothing(
    core: Embedder, encoder: CountingEncoder, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    first = await core.embed(audio=speech["wav"], options=CacheOptions(bypass=True))
    second = await core.embed(audio=speech["wav"], options=CacheOptions(bypass=True))
    assert first.tier == second.tier is CacheTier.COMPUTED and encoder.calls == 2
    assert raw.exists(first.conditioning.cache_key) == 0 and len(core.cache.local) == 0


async def test_corrupt_redis_value_is_detected_and_recomputed(
    core: Embedder, encoder: CountingEncoder, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    first = await core.embed(audio=speech["wav"])
    key = first.conditioning.cache_key
    value = bytearray(raw.get(key))
    value[100] ^= 0xFF
    raw.set(key, bytes(value))
    core.cache.local.discard(key)

    again = await core.embed(audio=speech["wav"])
    assert again.tier is CacheTier.COMPUTED and encoder.calls == 2
    assert core.cache.counters.corrupt_entries == 1
    assert np.allclose(again.conditioning.tensors["speaker"], first.conditioning.tensors["speaker"], atol=1e-6)
    core.cache.local.discard(key)
    assert (await core.embed(audio=speech["wav"])).tier is CacheTier.REDIS  # the bad value was replaced


async def test_64_concurrent_identical_misses_run_the_model_once(
    core: Embedder, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    results = await asyncio.gather(*(core.embed(audio=speech["wav"]) for _ in range(64)))
    assert encoder.calls == 1 and core.stats.extractions == 1 and core.cache.counters.coalesced == 63
    assert len({r.conditioning.tensors["speaker"].tobytes() for r in results}) == 1


async def test_queue_limit_answers_resource_exhausted(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any], other_speech: bytes
) -> None:
    core = make_core(encoder, redis_server.url, prefix, max_pending=1)
    gate = threading.Event()
    encoder.before = lambda: gate.wait(10)
    try:
        slow = asyncio.create_task(core.embed(audio=speech["wav"]))
        await asyncio.sleep(0.2)
        with pytest.raises(Overloaded, match="extractions already queued"):
            await core.embed(audio=other_speech)
        assert core.snapshot().shed == 1  # /metrics' voxcache_shed_extractions_total, GetStats' shed_extractions
        gate.set()
        assert (await slow).tier is CacheTier.COMPUTED
        assert core.snapshot().shed == 1
    finally:
        gate.set()
        await core.close()


async def test_voice_lifecycle(
    core: Embedder, encoder: CountingEncoder, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    voice, result = await core.register_voice("alice", speech["wav"])
    assert voice.duration_s == pytest.approx(4.0) and voice.pinned == {"ecapa": result.conditioning.cache_key}
    key = result.conditioning.cache_key
    assert raw.ttl(key) == -1
    by_name = await core.embed(voice_id="alice")
    assert by_name.cache_hit and by_name.conditioning.cache_key == key
    assert [v.voice_id for v in await core.list_voices()] == ["alice"]

    with pytest.raises(Exception, match="already exists"):
        await core.register_voice("alice", speech["wav"])

    deleted = await core.delete_voice("alice")
    assert deleted.voice_id == "alice" and await core.list_voices() == []
    assert 0 < raw.ttl(key) <= core.settings.default_ttl_s  # unpinned, not deleted
    with pytest.raises(NotFound, match="voice 'alice' is not registered"):
        await core.embed(voice_id="alice")
    with pytest.raises(NotFound):
        await core.delete_voice("alice")


async def test_voice_is_rederived_from_stored_audio_when_its_entry_is_gone(
    core: Embedder, encoder: CountingEncoder, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    _, result = await core.register_voice("bob", speech["wav"])
    raw.delete(result.conditioning.cache_key)
    core.cache.local.discard(result.conditioning.cache_key)
    again = await core.embed(voice_id="bob")
    assert again.tier is CacheTier.COMPUTED and encoder.calls == 2 and raw.ttl(result.conditioning.cache_key) == -1


async def test_in_process_only_mode_without_redis(encoder: CountingEncoder, speech: dict[str, Any]) -> None:
    core = make_core(encoder, None, "local")
    try:
        assert (await core.embed(audio=speech["wav"])).tier is CacheTier.COMPUTED
        assert (await core.embed(audio=speech["wav"])).tier is CacheTier.LOCAL
        await core.register_voice("carol", speech["wav"])
        assert (await core.embed(voice_id="carol")).cache_hit
        assert [v.voice_id for v in await core.list_voices()] == ["carol"]
        assert (await core.full_snapshot()).redis_entries == -1 and not core.cache.shared_available
    finally:
        await core.close()


async def test_an_unknown_voice_is_not_found_and_named(core: Embedder) -> None:
    with pytest.raises(NotFound, match="voice 'ghost' is not registered") as caught:
        await core.embed(voice_id="ghost")
    assert caught.value.field == "voice_id" and caught.value.resource == Resource("voxcache.v1.Voice", "ghost")


@pytest.mark.parametrize(
    ("kwargs", "field", "match"),
    [
        ({}, "audio", "exactly one of audio or voice_id"),
        ({"audio": b""}, "audio", "empty"),
        ({"voice_id": "no such voice!"}, "voice_id", "invalid"),
        ({"audio": b"RIFF", "encoder": "wav2vec"}, "encoder", "unknown encoder 'wav2vec'; available: ecapa"),
    ],
)
async def test_bad_requests_name_the_field(core: Embedder, kwargs: dict[str, Any], field: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as caught:
        await core.embed(**kwargs)
    assert caught.value.field == field
    assert core.stats.errors == 1


async def test_other_workers_see_a_deleted_voice_within_the_voice_cache_window(
    core: Embedder, encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    other = make_core(encoder, redis_server.url, prefix, voice_cache_s=0.3)
    try:
        await core.register_voice("frank", speech["wav"])
        assert (await other.embed(voice_id="frank")).cache_hit
        await core.delete_voice("frank")
        assert (await other.embed(voice_id="frank")).cache_hit  # trusted for voice_cache_s
        await asyncio.sleep(0.4)
        with pytest.raises(NotFound, match="is not registered"):
            await other.embed(voice_id="frank")
    finally:
        await other.close()


async def test_a_pinned_request_joining_an_unpinned_miss_still_pins(
    core: Embedder, encoder: CountingEncoder, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    plain, _ = await asyncio.gather(
        core.embed(audio=speech["wav"]), core.embed(audio=speech["wav"], options=CacheOptions(pin=True))
    )
    assert encoder.calls == 1 and core.cache.counters.coalesced == 1
    assert raw.ttl(plain.conditioning.cache_key) == -1


async def test_registering_a_voice_whose_clip_is_already_cached_pins_it(
    core: Embedder, raw: redis.Redis, speech: dict[str, Any]
) -> None:
    key = (await core.embed(audio=speech["wav"])).conditioning.cache_key
    assert raw.ttl(key) > 0
    voice, result = await core.register_voice("grace", speech["wav"])
    assert result.cache_hit and raw.ttl(key) == -1 and voice.pinned == {"ecapa": key}


class BrokenModel(CountingEncoder):
    """The real encoder whose output is replaced: raising, or NaN, for one test."""

    def __init__(self, inner: Any, failure: str) -> None:
        super().__init__(inner.inner if isinstance(inner, CountingEncoder) else inner)
        self.failure = failure

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        out = super().encode(samples)
        if self.failure == "raise":
            raise RuntimeError("ECAPA produced a degenerate embedding")
        return {name: np.full_like(array, np.nan) for name, array in out.items()}


@pytest.mark.parametrize(("failure", "match"), [("raise", "could not use this clip"), ("nan", "non-finite")])
async def test_a_model_failure_on_one_clip_is_that_clips_invalid_argument(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any], failure: str, match: str
) -> None:
    core = make_core(BrokenModel(encoder, failure), redis_server.url, prefix)
    try:
        with pytest.raises(InvalidInput, match=match) as caught:
            await core.embed(audio=speech["wav"])
        assert caught.value.field == "audio"
        summary = await core.preload(_items([speech["wav"], speech["wav"]]))
        assert summary.received == 2 and len(summary.failures) == 2 and summary.failures[0].index == 0
    finally:
        await core.close()


async def test_preload_keeps_going_past_a_bad_clip_and_reports_it(
    core: Embedder, speech: dict[str, Any], other_speech: bytes
) -> None:
    huge = encode((speech["samples"] * 1e18).astype(np.float32), speech["rate"], subtype="FLOAT")
    summary = await core.preload(_items([speech["wav"], huge, other_speech]))
    assert (summary.received, summary.computed, len(summary.failures)) == (3, 2, 1)
    failure = summary.failures[0]
    assert failure.index == 1 and failure.kind.name == "INVALID_INPUT" and "full scale" in failure.message


async def _items(clips: list[bytes]) -> Any:
    from services.embedder.core import PreloadItem

    for index, clip in enumerate(clips):
        yield PreloadItem(clip, label=f"clip{index}")


async def test_a_miss_that_cannot_finish_before_its_deadline_is_refused_at_once(
    core: Embedder, encoder: CountingEncoder, speech: dict[str, Any], other_speech: bytes
) -> None:
    import time

    await core.embed(audio=speech["wav"])  # one extraction: admission now knows how long one takes
    gate = threading.Event()
    encoder.before = lambda: gate.wait(10)
    ahead = asyncio.create_task(core.embed(audio=other_speech))  # holds the only model worker
    await asyncio.sleep(0.1)
    third = encode(speech["samples"] * 0.5, speech["rate"])
    try:
        with pytest.raises(Overloaded, match="deadline leaves") as caught:
            await asyncio.wait_for(core.embed(audio=third, deadline=time.monotonic() + 0.05), 2)
        assert "queued ahead" in caught.value.message
        assert core.snapshot().shed == 1
    finally:
        gate.set()
        await ahead
    # Without a deadline (or with room for the queue) the same clip is admitted and computed.
    assert (await core.embed(audio=third, deadline=time.monotonic() + 60)).tier is CacheTier.COMPUTED


async def test_identical_bypass_requests_in_flight_share_one_extraction(
    core: Embedder, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    gate = threading.Event()
    encoder.before = lambda: gate.wait(10)
    requests = [
        asyncio.create_task(core.embed(audio=speech["wav"], options=CacheOptions(bypass=True))) for _ in range(8)
    ]
    await asyncio.sleep(0.2)
    gate.set()
    results = await asyncio.gather(*requests)
    assert encoder.calls == 1 and all(r.tier is CacheTier.COMPUTED for r in results)
    assert len(core.cache.local) == 0  # bypass still stores nothing
