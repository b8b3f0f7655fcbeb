"""ScoreSpeaker: real ECAPA, real Redis. The cosine is right, counted per backend, and the
scored (generated) audio never enters any cache tier."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest

from services.common.errors import InvalidInput
from services.common.redis_server import LocalRedis
from services.embedder.audio import resample
from services.embedder.core import Embedder
from services.embedder.server import RunningEmbedder
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from tests.conftest import CountingEncoder, raw_client
from voxcache.tensors import SPEAKER
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc


@pytest.fixture(scope="module")
def generated() -> bytes:
    """Other words in the reference's voice, at 24 kHz as Kokoro speaks: the Embedder resamples it."""
    samples, rate = espeak(SENTENCES[2])
    return encode(resample(fit_duration(samples, rate, 3.0), rate, 24_000), 24_000)


@pytest.fixture(scope="module")
def other_voice() -> bytes:
    """Another speaker: espeak-ng's female variant (en-gb is too close to en-us for ECAPA)."""
    samples, rate = espeak(SENTENCES[1], voice="en-us+f3")
    return encode(fit_duration(samples, rate, 3.0), rate)


def cache_keys(redis_server: LocalRedis, prefix: str) -> set[bytes]:
    return set(raw_client(redis_server.url).scan_iter(f"{prefix}*"))


async def test_same_voice_scores_high_and_another_voice_lower(
    core: Embedder, speech: dict[str, Any], other_voice: bytes, generated: bytes
) -> None:
    same = await core.score_speaker(generated, reference_audio=speech["wav"], backend="kokoro")
    other = await core.score_speaker(other_voice, reference_audio=speech["wav"], backend="kokoro")
    assert same.similarity > 0.6, same  # same espeak voice, different words, 24 kHz -> 16 kHz
    assert other.similarity < same.similarity - 0.2, (same, other)
    assert same.extract_ms > 0 and same.total_ms >= same.extract_ms
    assert other.reference_cache_hit is True  # the reference was embedded (and cached) by the first score


async def test_the_scored_audio_never_enters_a_cache_tier(
    core: Embedder,
    encoder: CountingEncoder,
    redis_server: LocalRedis,
    prefix: str,
    speech: dict[str, Any],
    generated: bytes,
) -> None:
    reference = (await core.embed(audio=speech["wav"])).conditioning
    keys_before, local_before, calls_before = cache_keys(redis_server, prefix), len(core.cache.local), encoder.calls
    first = await core.score_speaker(generated, reference=reference.tensors, reference_encoder="ecapa")
    second = await core.score_speaker(generated, reference=reference.tensors)
    assert first.similarity == pytest.approx(second.similarity, abs=1e-6)
    assert encoder.calls == calls_before + 2  # no hit: the model ran for each score
    assert cache_keys(redis_server, prefix) == keys_before and len(core.cache.local) == local_before
    assert first.reference_cache_hit is False  # inline reference: no look-up at all
    # Embedding that audio afterwards is a miss: nothing was left behind for it.
    assert (await core.embed(audio=generated)).cache_hit is False


async def test_inline_reference_gives_the_same_cosine_as_by_hand(
    core: Embedder, speech: dict[str, Any], generated: bytes
) -> None:
    reference = (await core.embed(audio=speech["wav"])).conditioning.tensors[SPEAKER]
    spoken = (await core.embed(audio=generated)).conditioning.tensors[SPEAKER]
    expected = float(reference @ spoken / (np.linalg.norm(reference) * np.linalg.norm(spoken)))
    score = await core.score_speaker(generated, reference={SPEAKER: reference})
    assert score.similarity == pytest.approx(expected, abs=1e-4)


async def test_figures_per_backend_count_scores_and_failures(
    core: Embedder, speech: dict[str, Any], other_voice: bytes, generated: bytes
) -> None:
    for clip in (generated, other_voice, generated):
        await core.score_speaker(clip, reference_audio=speech["wav"], backend="kokoro")
    await core.score_speaker(generated, reference_audio=speech["wav"], backend="indextts2")
    short = encode(np.sin(np.arange(8_000) / 7).astype(np.float32) * 0.3, 16_000)  # 0.5 s: too short to embed
    with pytest.raises(InvalidInput, match="at least 1 s") as refused:
        await core.score_speaker(short, reference_audio=speech["wav"], backend="kokoro")
    assert refused.value.field == "audio"
    figures = core.snapshot().speaker_similarity
    kokoro, index = figures["kokoro"], figures["indextts2"]
    assert (kokoro.scored, kokoro.failed, kokoro.samples, index.scored, index.failed) == (3, 1, 3, 1, 0)
    same = (await core.score_speaker(generated, reference_audio=speech["wav"])).similarity
    assert kokoro.p50 == pytest.approx(same, abs=1e-4)  # two of kokoro's three scores were this clip
    assert core.snapshot().speaker_similarity["unlabelled"].scored == 1


@pytest.mark.parametrize(
    ("kwargs", "field", "match"),
    [
        ({}, "reference_audio", "exactly one"),
        ({"reference": {SPEAKER: np.ones(10, np.float32)}}, "reference_conditioning.tensors[speaker]", "shape"),
        ({"reference": {SPEAKER: np.zeros(192, np.float32)}}, "reference_conditioning.tensors[speaker]", "zeros"),
        ({"reference": {"x": np.ones(192, np.float32)}}, "reference_conditioning.tensors", "lacks"),
        (
            {"reference": {SPEAKER: np.ones(192, np.float32)}, "reference_encoder": "indextts2"},
            "reference_conditioning.encoder",
            "scoring needs 'ecapa'",
        ),
        ({"reference_audio": b"RIFF nonsense"}, "reference_audio", "reference_audio"),
        ({"voice_id": "nobody"}, "voice_id", "not registered"),
        ({"voice_id": "x", "backend": "Bad Label!"}, "backend", "backend label"),
    ],
)
async def test_bad_requests_name_the_field(
    core: Embedder, generated: bytes, kwargs: dict[str, Any], field: str, match: str
) -> None:
    with pytest.raises(Exception, match=match) as refused:
        await core.score_speaker(generated, **kwargs)
    assert getattr(refused.value, "field", None) == field


async def test_score_speaker_and_getstats_over_grpc(
    embedder_service: RunningEmbedder, speech: dict[str, Any], generated: bytes
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{embedder_service.port}") as channel:
        stub = embedder_pb2_grpc.EmbedderStub(channel)
        answer = await stub.ScoreSpeaker(
            pb.ScoreSpeakerRequest(audio=generated, reference_audio=speech["wav"], backend="kokoro")
        )
        assert 0.6 < answer.speaker_similarity <= 1.0 and answer.extract_ms > 0
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ScoreSpeaker(pb.ScoreSpeakerRequest(audio=generated, backend="kokoro"))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "exactly one of reference_audio" in (refused.value.details() or "")
        stats = (await stub.GetStats(pb.GetStatsRequest())).speaker_similarity["kokoro"]
    assert (stats.scored, stats.failed, stats.samples) == (1, 1, 1)
    assert stats.p50 == pytest.approx(answer.speaker_similarity, abs=1e-6)
