"""Re-encoding-proof keys: the same samples in four containers cost one extraction.

Real parts throughout: the real ECAPA weights, a real redis-server, audio written by
libsndfile; the encoder is wrapped only to count its calls.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np
import pytest
import redis
import soundfile as sf

from services.common.redis_server import LocalRedis
from services.embedder import audio as audio_mod
from services.embedder.cache import alias, keys
from services.embedder.cache.tiered import CacheTier
from services.embedder.core import CacheOptions, Embedder
from tests.audio_fixtures import encode
from tests.conftest import CountingEncoder, make_core, raw_client


def with_list_chunk(wav: bytes) -> bytes:
    """The WAV with a LIST/INFO chunk (as editors write) between its fmt and data chunks."""
    assert wav[:4] == b"RIFF" and wav[12:16] == b"fmt "
    (fmt_size,) = struct.unpack_from("<I", wav, 16)
    cut = 20 + fmt_size
    info = b"INFO" + b"ISFT" + struct.pack("<I", 8) + b"voxcach\0"
    chunk = b"LIST" + struct.pack("<I", len(info)) + info
    body = wav[8:cut] + chunk + wav[cut:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


def four_containers(samples: np.ndarray, rate: int) -> dict[str, bytes]:
    """One clip's 16-bit values as WAV 16-bit, WAV 24-bit (v << 8), WAV with a LIST chunk, FLAC."""
    wav16 = encode(samples, rate)
    values, _ = sf.read(io.BytesIO(wav16), dtype="int16")
    out = io.BytesIO()
    sf.write(out, values.astype(np.int32) << 16, rate, format="WAV", subtype="PCM_24")  # top 24 bits: v << 8
    return {
        "wav16": wav16,
        "wav24": out.getvalue(),
        "wav_list": with_list_chunk(wav16),
        "flac": encode(values, rate, fmt="FLAC", subtype="PCM_16"),
    }


@pytest.fixture
def raw(redis_server: LocalRedis) -> redis.Redis | redis.RedisCluster:
    return raw_client(redis_server.url)


@pytest.fixture(scope="module")
def variants(speech: dict[str, Any]) -> dict[str, bytes]:
    return four_containers(speech["samples"], speech["rate"])


def test_the_four_containers_are_different_bytes_of_the_same_samples(variants: dict[str, bytes]) -> None:
    assert len({keys.content_digest(v) for v in variants.values()}) == 4
    wav24 = sf.read(io.BytesIO(variants["wav24"]), dtype="int32")[0]
    wav16 = sf.read(io.BytesIO(variants["wav16"]), dtype="int32")[0]
    assert sf.info(io.BytesIO(variants["wav24"])).subtype == "PCM_24" and np.array_equal(wav24, wav16)
    limits = audio_mod.AudioLimits(max_bytes=1 << 24, max_duration_s=30)
    digests = {
        keys.pcm_digest(r.sample_rate, r.samples) for r in (audio_mod.read(v, limits) for v in variants.values())
    }
    assert len(digests) == 1


async def test_same_clip_in_four_containers_costs_one_extraction(
    core: Embedder, encoder: CountingEncoder, variants: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    real_read = audio_mod.read

    def counting_read(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return real_read(*args, **kwargs)

    monkeypatch.setattr(audio_mod, "read", counting_read)
    results = {name: await core.embed(audio=data) for name, data in variants.items()}
    assert encoder.calls == 1 and core.stats.extractions == 1
    assert reads == 4  # one decode per container: the alias costs a decode, never a forward pass
    first = results["wav16"]
    assert first.tier is CacheTier.COMPUTED
    for name in ("wav24", "wav_list", "flac"):
        again = results[name]
        assert again.tier is CacheTier.REDIS, name
        assert again.timings.extract_ms == 0 and again.timings.decode_ms > 0
        assert again.conditioning.tensors["speaker"].tobytes() == first.conditioning.tensors["speaker"].tobytes()
        assert again.conditioning.cache_key == first.conditioning.cache_key  # the one entry they share
    assert core.pcm_index.counters.aliases_created == 3

    # Each container's bytes are now an L1 hit, and in a fresh worker a store hit through its
    # alias: no decode, no model.
    for data in variants.values():
        assert (await core.embed(audio=data)).tier is CacheTier.LOCAL
    assert reads == 4


async def test_an_alias_is_a_store_hit_in_another_worker_without_decoding(
    core: Embedder,
    encoder: CountingEncoder,
    variants: dict[str, bytes],
    redis_server: LocalRedis,
    prefix: str,
    raw: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await core.embed(audio=variants["wav16"])
    await core.embed(audio=variants["flac"])
    flac_key = keys.conditioning(prefix, "ecapa", encoder.weights_digest, keys.content_digest(variants["flac"]))
    stored = raw.get(flac_key.redis_key)
    assert stored is not None and alias.is_alias(stored) and len(stored) == 28
    monkeypatch.setattr(audio_mod, "read", lambda *a, **k: pytest.fail("a hit through an alias decoded audio"))
    other = make_core(encoder, redis_server.url, prefix)
    try:
        again = await other.embed(audio=variants["flac"])
        assert again.tier is CacheTier.REDIS and other.cache.counters.alias_hits == 1
        assert (await other.embed(audio=variants["flac"])).tier is CacheTier.LOCAL
    finally:
        await other.close()
    assert encoder.calls == 1


async def test_a_different_clip_is_not_aliased(
    core: Embedder, encoder: CountingEncoder, variants: dict[str, bytes], other_speech: bytes
) -> None:
    first = await core.embed(audio=variants["wav16"])
    other = await core.embed(audio=other_speech)
    assert other.tier is CacheTier.COMPUTED and encoder.calls == 2
    assert other.conditioning.cache_key != first.conditioning.cache_key
    # One sample off by one LSB is another clip too.
    values, rate = sf.read(io.BytesIO(variants["wav16"]), dtype="int16")
    values[1000] += 1
    nudged = await core.embed(audio=encode(values, rate, fmt="FLAC", subtype="PCM_16"))
    assert nudged.tier is CacheTier.COMPUTED and encoder.calls == 3
    assert core.pcm_index.counters.aliases_created == 0


async def test_tenants_do_not_alias_each_others_clips(
    core: Embedder, encoder: CountingEncoder, variants: dict[str, bytes]
) -> None:
    await core.embed(audio=variants["wav16"], tenant="acme")
    other = await core.embed(audio=variants["flac"], tenant="globex")
    assert other.tier is CacheTier.COMPUTED and encoder.calls == 2
    same_tenant = await core.embed(audio=variants["flac"], tenant="acme")
    assert same_tenant.tier is CacheTier.REDIS and encoder.calls == 2


async def test_an_index_whose_entry_is_gone_extracts_and_repoints(
    core: Embedder, encoder: CountingEncoder, variants: dict[str, bytes], raw: redis.Redis
) -> None:
    first = await core.embed(audio=variants["wav16"])
    raw.delete(first.conditioning.cache_key)
    core.cache.local.discard(first.conditioning.cache_key)
    again = await core.embed(audio=variants["flac"])
    assert again.tier is CacheTier.COMPUTED and encoder.calls == 2
    # The index now names the FLAC's entry: the 24-bit copy aliases to it.
    third = await core.embed(audio=variants["wav24"])
    assert third.tier is CacheTier.REDIS and third.conditioning.cache_key == again.conditioning.cache_key
    assert encoder.calls == 2


async def test_bypass_and_the_switch_turn_aliasing_off(
    encoder: CountingEncoder, variants: dict[str, bytes], redis_server: LocalRedis, prefix: str
) -> None:
    off = make_core(encoder, redis_server.url, prefix, reencode_aliases=False)
    try:
        await off.embed(audio=variants["wav16"])
        assert (await off.embed(audio=variants["flac"])).tier is CacheTier.COMPUTED
        assert (await off.embed(audio=variants["wav24"], options=CacheOptions(bypass=True))).tier is CacheTier.COMPUTED
    finally:
        await off.close()
    assert encoder.calls == 3


async def test_a_forged_alias_is_rejected_and_recomputed(
    core: Embedder,
    encoder: CountingEncoder,
    variants: dict[str, bytes],
    other_speech: bytes,
    raw: redis.Redis,
    prefix: str,
) -> None:
    victim = await core.embed(audio=other_speech)
    flac_key = keys.conditioning(prefix, "ecapa", encoder.weights_digest, keys.content_digest(variants["flac"]))
    # An alias signed for another key, copied to the FLAC's key: its tag covers the key, so it fails.
    forged = alias.encode("somewhere:else", keys.content_digest(other_speech), core.cache.keyring)
    raw.set(flac_key.redis_key, forged)
    result = await core.embed(audio=variants["flac"])
    assert result.tier is CacheTier.COMPUTED and core.cache.counters.corrupt_entries == 1
    assert result.conditioning.cache_key != victim.conditioning.cache_key


async def test_redis_down_still_serves_the_miss(
    encoder: CountingEncoder, variants: dict[str, bytes], prefix: str
) -> None:
    nowhere = make_core(encoder, "redis://127.0.0.1:1", prefix)
    try:
        result = await nowhere.embed(audio=variants["flac"])
    finally:
        await nowhere.close()
    assert result.tier is CacheTier.COMPUTED and encoder.calls == 1


async def test_signed_aliases_verify_only_with_the_signing_keys(
    encoder: CountingEncoder, variants: dict[str, bytes], redis_server: LocalRedis, prefix: str
) -> None:
    signed = make_core(encoder, redis_server.url, prefix, cache_hmac_keys="k2:" + "s" * 32)
    unsigned = make_core(encoder, redis_server.url, prefix)
    try:
        await signed.embed(audio=variants["wav16"])
        assert (await signed.embed(audio=variants["flac"])).tier is CacheTier.REDIS and encoder.calls == 1
        # A worker without the key rejects the signed alias (and the signed entry): it recomputes.
        again = await unsigned.embed(audio=variants["flac"])
        assert again.tier is CacheTier.COMPUTED and unsigned.cache.counters.corrupt_entries >= 1
    finally:
        await signed.close()
        await unsigned.close()


def test_an_alias_names_its_target_and_rejects_tampering() -> None:
    from services.embedder.cache.record import Keyring, RecordError

    keyring = Keyring.parse("k1:" + "x" * 32)
    digest = keys.content_digest(b"clip")
    value = alias.encode("p:cond:ecapa:00000000:abc", digest, keyring)
    assert len(value) == alias.SIZE == 28 and alias.decode("p:cond:ecapa:00000000:abc", value, keyring) == digest
    for bad_key, bad_value, ring in (
        ("p:cond:ecapa:00000000:abd", value, keyring),  # copied under another key
        ("p:cond:ecapa:00000000:abc", value[:-1] + bytes([value[-1] ^ 1]), keyring),  # tag flipped
        ("p:cond:ecapa:00000000:abc", value, Keyring.parse("k9:" + "y" * 32)),  # another secret
        ("p:cond:ecapa:00000000:abc", value, Keyring()),  # signed, read where no key is set
    ):
        with pytest.raises(RecordError):
            alias.decode(bad_key, bad_value, ring)
