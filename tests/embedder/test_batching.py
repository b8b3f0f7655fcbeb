"""Micro-batching of misses: one forward pass for concurrent clips, each clip's own vector.

The real ECAPA encoder (behind the counting spy), real speech of different voices and
lengths, the real core over the real Redis.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from services.common.errors import InvalidInput
from services.common.redis_server import LocalRedis
from services.embedder import audio
from services.embedder.batching import length_buckets
from services.embedder.encoders.ecapa import EcapaEncoder
from services.embedder.settings import EmbedderSettings
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from tests.conftest import CountingEncoder, make_core

#: The least cosine between a clip's batched and unbatched vectors (issue 11).
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def clips() -> list[bytes]:
    """Five clips: three sentences, two voices, 2-5 s, so a batch pads most of them."""
    out = []
    shapes = [(5.0, "en-us"), (4.0, "en-gb"), (3.5, "en-us"), (3.0, "en-gb"), (2.0, "en-us")]
    for i, (seconds, voice) in enumerate(shapes):
        samples, rate = espeak(SENTENCES[i % 3], voice=voice)
        out.append(encode(fit_duration(samples, rate, seconds), rate))
    return out


def samples_16k(wav: bytes) -> np.ndarray:
    return audio.decode(wav, EmbedderSettings().audio_limits, target_rate=16_000).samples


def test_a_padded_batch_gives_each_clip_its_unbatched_vector(ecapa: EcapaEncoder, clips: list[bytes]) -> None:
    samples = [samples_16k(wav) for wav in clips]
    batched = ecapa.encode_batch(samples)  # all five in one pass: the 2 s clip is 60 % padding
    for clip, together in zip(samples, batched, strict=True):
        cosine = float(ecapa.encode(clip)["speaker"] @ together["speaker"])
        assert cosine >= MIN_COSINE, cosine


def test_length_buckets_keep_padding_small() -> None:
    assert length_buckets([100, 80, 79, 64, 45, 40, 10]) == [[0, 1], [2, 3], [4, 5], [6]]
    assert length_buckets([10, 100, 90]) == [[1, 2], [0]]
    assert length_buckets([10, 10, 10]) == [[0, 1, 2]]


async def test_concurrent_misses_share_one_forward_pass(
    ecapa: EcapaEncoder, encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, clips: list[bytes]
) -> None:
    similar = clips[:2]  # 5 s and 4 s: one length bucket
    # A full batch closes the window at once; the long window only makes the test immune to a slow decode.
    core = make_core(encoder, redis_server.url, prefix, batch_window_ms=5000, max_batch=2)
    try:
        results = await asyncio.gather(*(core.embed(audio=wav) for wav in similar))
        assert encoder.batch_sizes == [2] and encoder.calls == 0
        stats = core.snapshot()
        assert stats.forward_passes == 1 and stats.batched_clips == 2 and stats.extractions == 2
        for wav, together in zip(similar, results, strict=True):
            cosine = float(ecapa.encode(samples_16k(wav))["speaker"] @ together.conditioning.tensors["speaker"])
            assert cosine >= MIN_COSINE
    finally:
        await core.close()


async def test_without_a_window_each_miss_runs_alone(encoder: CountingEncoder, prefix: str, clips: list[bytes]) -> None:
    core = make_core(encoder, None, prefix, batch_window_ms=0)
    try:
        await asyncio.gather(*(core.embed(audio=wav) for wav in clips[:3]))
        assert encoder.batch_sizes == [] and encoder.calls == 3
        assert core.snapshot().forward_passes == 3 and core.snapshot().batched_clips == 0
    finally:
        await core.close()


async def test_no_pass_runs_more_than_max_batch_clips(
    encoder: CountingEncoder, prefix: str, speech: dict[str, Any]
) -> None:
    """Five clips of one length (one bucket) and max_batch 2: at least three passes, whatever the timing."""
    same_length = [encode(speech["samples"] * (1.0 - 0.05 * i), speech["rate"]) for i in range(5)]
    core = make_core(encoder, None, prefix, batch_window_ms=200, max_batch=2)
    try:
        await asyncio.gather(*(core.embed(audio=wav) for wav in same_length))
        assert all(size <= 2 for size in encoder.batch_sizes)
        stats = core.snapshot()
        assert stats.extractions == 5 and stats.forward_passes >= 3
    finally:
        await core.close()


async def test_a_clip_the_model_cannot_use_fails_alone(
    encoder: CountingEncoder, prefix: str, clips: list[bytes]
) -> None:
    """The pass fails as a whole; retried clip by clip, only the bad clip gets INVALID_ARGUMENT."""
    bad = samples_16k(clips[1])
    encoder.refuse = lambda samples: len(samples) == len(bad) and bool(np.array_equal(samples, bad))
    core = make_core(encoder, None, prefix, batch_window_ms=5000, max_batch=2)
    try:
        outcomes = await asyncio.gather(*(core.embed(audio=wav) for wav in clips[:2]), return_exceptions=True)
        assert encoder.batch_sizes == [2]  # tried together first
        good, failed = outcomes
        assert not isinstance(good, BaseException) and good.conditioning.tensors["speaker"].shape == (192,)
        assert isinstance(failed, InvalidInput) and failed.field == "audio"
        assert "could not use this clip" in failed.message
    finally:
        await core.close()


async def test_admission_still_refuses_with_batching_on(
    encoder: CountingEncoder, prefix: str, clips: list[bytes], speech: dict[str, Any]
) -> None:
    core = make_core(encoder, None, prefix, batch_window_ms=200, max_batch=8, max_pending=2)
    try:
        outcomes = await asyncio.gather(*(core.embed(audio=wav) for wav in clips[:3]), return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(refused) == 1 and "already queued" in str(refused[0])
    finally:
        await core.close()
