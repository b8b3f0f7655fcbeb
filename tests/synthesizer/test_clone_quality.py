"""Clone quality in the answer: real Kokoro, real ECAPA, real Redis, real gRPC on loopback.

The score is the Embedder's own ScoreSpeaker of the returned audio, it is opt-in or sampled,
it rides on the stream's last message, and a scoring failure never fails synthesis.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.common.redis_server import free_port
from services.synthesizer import server as synthesizer_server
from services.synthesizer.backends.kokoro import KokoroBackend
from services.synthesizer.scoring import CloneScorer, ScoringSettingsError
from services.synthesizer.settings import SynthesizerSettings
from tests.conftest import Services
from voxcache import AsyncEmbedderClient, AsyncSynthesizerClient, cli
from voxcache.v1 import embedder_pb2, embedder_pb2_grpc

TEXT = "The cache remembers every voice. Each worker shares what it learned."


@pytest.fixture
async def synth(services: Services) -> AsyncIterator[AsyncSynthesizerClient]:
    async with AsyncSynthesizerClient(services.synthesizer_address, timeout=120) as client:
        yield client


async def test_a_requested_score_is_the_embedders_cosine_of_the_returned_audio(
    services: Services, synth: AsyncSynthesizerClient, speech: dict[str, Any]
) -> None:
    plain = await synth.say(TEXT, voice=speech["wav"])
    scored = await synth.say(TEXT, voice=speech["wav"], score=True)
    assert plain.speaker_similarity is None and plain.speaker_similarity_error == ""
    assert scored.speaker_similarity is not None and scored.speaker_similarity_error == ""
    assert scored.audio == plain.audio  # scoring changes nothing that is spoken
    async with grpc.aio.insecure_channel(services.embedder_address) as channel:
        stub = embedder_pb2_grpc.EmbedderStub(channel)
        again = await stub.ScoreSpeaker(
            embedder_pb2.ScoreSpeakerRequest(audio=scored.audio, reference_audio=speech["wav"], backend="check")
        )
        stats = await stub.GetStats(embedder_pb2.GetStatsRequest())
    assert scored.speaker_similarity == pytest.approx(again.speaker_similarity, abs=1e-4)
    kokoro = stats.speaker_similarity["kokoro"]  # counted under the backend that spoke
    assert (kokoro.scored, kokoro.failed) == (1, 0)
    assert kokoro.p50 == pytest.approx(scored.speaker_similarity, abs=1e-6)


async def test_the_stream_scores_on_its_last_message_only(
    synth: AsyncSynthesizerClient, speech: dict[str, Any]
) -> None:
    chunks = [chunk async for chunk in synth.stream(TEXT, voice=speech["wav"], score=True)]
    assert chunks[-1].last and chunks[-1].speaker_similarity is not None
    assert all(chunk.speaker_similarity is None for chunk in chunks[:-1])
    unary = await synth.say(TEXT, voice=speech["wav"], score=True)
    assert chunks[-1].speaker_similarity == pytest.approx(unary.speaker_similarity, abs=1e-4)  # same audio


async def test_sampled_mode_scores_one_answer_in_n(
    services: Services, kokoro: KokoroBackend, speech: dict[str, Any]
) -> None:
    settings = replace(SynthesizerSettings(), port=0, embedder_address=services.embedder_address, score_sample_rate=3)
    running = await synthesizer_server.start(settings, backends={"kokoro": kokoro})
    try:
        async with AsyncSynthesizerClient(f"127.0.0.1:{running.port}", timeout=120) as client:
            scored = [(await client.say("Short and sweet.", voice=speech["wav"])).speaker_similarity for _ in range(6)]
            forced = await client.say("Short and sweet.", voice=speech["wav"], score=True)
    finally:
        await running.stop()
    assert [value is not None for value in scored] == [False, False, True, False, False, True]
    assert forced.speaker_similarity is not None  # the request's flag wins over the sampling


async def test_a_scoring_failure_never_fails_synthesis(
    services: Services, kokoro: KokoroBackend, speech: dict[str, Any]
) -> None:
    """An Embedder that is gone: inline conditioning still speaks; the answer says it is unscored."""
    async with AsyncEmbedderClient(services.embedder_address) as embedder:
        reference = await embedder.embed(speech["wav"])
    settings = replace(SynthesizerSettings(), port=0, embedder_address=f"127.0.0.1:{free_port()}")
    running = await synthesizer_server.start(settings, backends={"kokoro": kokoro})  # warmed by `services`
    try:
        async with AsyncSynthesizerClient(f"127.0.0.1:{running.port}", timeout=120) as client:
            speech_out = await client.say(TEXT, conditioning=reference, score=True)
            chunks = [chunk async for chunk in client.stream(TEXT, conditioning=reference, score=True)]
        failed = running.core.scorer.failed
    finally:
        await running.stop()
    assert speech_out.duration_s > 1 and speech_out.speaker_similarity is None
    assert speech_out.speaker_similarity_error.startswith("not scored:")
    assert "unreachable" in speech_out.speaker_similarity_error
    assert chunks[-1].speaker_similarity is None and chunks[-1].speaker_similarity_error.startswith("not scored:")
    assert failed == 2


async def test_too_short_to_embed_is_reported_not_raised(synth: AsyncSynthesizerClient, speech: dict[str, Any]) -> None:
    short = await synth.say("Hi.", voice=speech["wav"], speed=2.0, score=True)
    assert short.duration_s < 1.0 and short.audio
    assert short.speaker_similarity is None and "at least 1 s" in short.speaker_similarity_error


async def test_cli_say_score_and_stats(
    services: Services, speech: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = tmp_path / "ref.wav"
    ref.write_bytes(speech["wav"])
    common = ["--embedder", services.embedder_address, "--synthesizer", services.synthesizer_address, "-q"]
    for extra in ([], ["--stream"]):
        args = [*common, "say", TEXT, "--voice", str(ref), "-o", str(tmp_path / "out.wav"), "--force", "--score"]
        assert await asyncio.to_thread(cli.main, [*args, *extra]) == 0
        assert re.search(r"^clone quality: speaker similarity -?\d\.\d{3} ", capsys.readouterr().out, re.M)
    assert await asyncio.to_thread(cli.main, [*common, "stats"]) == 0
    stats = capsys.readouterr().out
    assert re.search(r"^similarity kokoro +p50 -?\d\.\d{3} over 2 recent scores \(2 scored, 0 failed\)$", stats, re.M)


def test_sampling_counts_only_unforced_requests_and_refuses_a_negative_rate() -> None:
    scorer = CloneScorer(None, 2)  # type: ignore[arg-type]  # wanted() never calls the Embedder
    pattern = [scorer.wanted(forced) for forced in (False, True, False, True, False, False)]
    assert pattern == [False, True, True, True, False, True]
    assert [CloneScorer(None, 0).wanted(False) for _ in range(3)] == [False] * 3  # type: ignore[arg-type]
    with pytest.raises(ScoringSettingsError, match="--score-sample-rate"):
        CloneScorer(None, -1)  # type: ignore[arg-type]
    with pytest.raises(SystemExit, match="--score-sample-rate must be 0"):
        synthesizer_server.main(["--score-sample-rate", "-1", "--port", "0"])
