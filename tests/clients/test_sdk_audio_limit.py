"""Over-size clips are refused by the SDK before sending, named; Preload reports them and goes on.

Against a real Embedder (the `embedder_service` fixture: --max-audio-mb 2, so gRPC's own
cap on a message is 3 MiB). Sync calls run in a worker thread: the server shares this loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.embedder.server import RunningEmbedder
from services.embedder.settings import EmbedderSettings
from voxcache import AsyncEmbedderClient, EmbedderClient, VoxcacheError, cli
from voxcache.embedder import DEFAULT_MAX_AUDIO_BYTES

MIB = 1024 * 1024
#: Over the fixture server's message cap (2 MiB of audio + 1 MiB of framing).
HUGE = b"\0" * (4 * MIB)


def address(service: RunningEmbedder) -> str:
    return f"127.0.0.1:{service.port}"


def test_the_default_limit_is_the_servers_default() -> None:
    assert DEFAULT_MAX_AUDIO_BYTES == EmbedderSettings().max_audio_bytes == 16 * MIB
    assert EmbedderClient().max_audio_bytes == DEFAULT_MAX_AUDIO_BYTES


async def test_without_the_check_one_huge_clip_loses_the_whole_preload(
    embedder_service: RunningEmbedder, speech: dict[str, Any]
) -> None:
    """The problem the limit solves: the server's gRPC cap ends the stream, naming no clip."""
    async with AsyncEmbedderClient(address(embedder_service), timeout=30, max_audio_bytes=64 * MIB) as client:
        with pytest.raises(VoxcacheError) as caught:
            await client.preload([("good.wav", speech["wav"]), ("huge.wav", HUGE)])
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED and "huge.wav" not in str(caught.value)


async def test_embed_and_register_refuse_before_sending_and_name_the_clip(
    embedder_service: RunningEmbedder, tmp_path: Path
) -> None:
    huge_file = tmp_path / "huge.wav"
    huge_file.write_bytes(HUGE)

    def run() -> list[VoxcacheError]:
        errors = []
        with EmbedderClient(address(embedder_service), max_audio_bytes=2 * MIB) as client:
            before = client.stats()["requests"]
            for call in (
                lambda: client.embed(HUGE),
                lambda: client.embed(huge_file),
                lambda: client.register_voice("big", huge_file),
                lambda: client.register_voice("big", HUGE),
            ):
                with pytest.raises(VoxcacheError) as caught:
                    call()
                errors.append(caught.value)
            assert client.stats()["requests"] == before  # nothing reached the server
            assert client.list_voices() == []
        return errors

    errors = await asyncio.to_thread(run)
    assert all(e.code is grpc.StatusCode.RESOURCE_EXHAUSTED and e.field == "audio" for e in errors)
    assert "the audio is 4.0 MiB" in errors[0].message and "max_audio_bytes (2097152)" in errors[0].message
    assert f"clip {huge_file} is 4.0 MiB" in errors[1].message and str(huge_file) in errors[2].message
    assert "the audio of voice 'big'" in errors[3].message


async def test_preload_skips_and_reports_over_size_clips(
    embedder_service: RunningEmbedder, speech: dict[str, Any], other_speech: bytes
) -> None:
    clips: list[Any] = [("a.wav", speech["wav"]), ("huge.wav", HUGE), HUGE, ("b.wav", other_speech)]
    clips.append(("bad.wav", b"not audio" * 20))
    async with AsyncEmbedderClient(address(embedder_service), timeout=30, max_audio_bytes=2 * MIB) as client:
        summary = await client.preload(clips)

        async def streamed() -> AsyncIterator[Any]:
            for clip in clips:
                yield clip

        again = await client.preload(streamed())  # an async stream numbers its clips the same way
    assert (summary.received, summary.computed, summary.cached, summary.failed) == (5, 2, 0, 3)
    assert [(f["index"], f["label"], f["code"]) for f in summary.failures] == [
        (1, "huge.wav", "RESOURCE_EXHAUSTED"),
        (2, "", "RESOURCE_EXHAUSTED"),
        (4, "bad.wav", "INVALID_ARGUMENT"),  # the server's index 2, mapped back to the caller's 4
    ]
    assert "clip huge.wav is 4.0 MiB" in summary.failures[0]["message"]
    assert "clip #2 is 4.0 MiB" in summary.failures[1]["message"]
    assert (again.received, again.cached, again.failed) == (5, 2, 3)
    assert [f["index"] for f in again.failures] == [1, 2, 4]


async def test_sync_preload_skips_too(embedder_service: RunningEmbedder, speech: dict[str, Any]) -> None:
    def run() -> Any:
        with EmbedderClient(address(embedder_service), max_audio_bytes=2 * MIB) as client:
            return client.preload([HUGE, speech["wav"]])

    summary = await asyncio.to_thread(run)
    assert (summary.received, summary.failed, summary.failures[0]["index"]) == (2, 1, 0)


async def test_cli_preload_lists_the_over_size_clip(
    embedder_service: RunningEmbedder, speech: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, huge = tmp_path / "good.wav", tmp_path / "huge.wav"
    good.write_bytes(speech["wav"])
    huge.write_bytes(b"\0" * (DEFAULT_MAX_AUDIO_BYTES + 1))  # over the CLI's (default) limit: never sent
    listing = tmp_path / "clips.txt"
    listing.write_text(f"{good}\n{huge}\n")
    args = ["--embedder", address(embedder_service), "-q", "preload", str(listing)]
    assert await asyncio.to_thread(cli.main, args) == 1
    output = capsys.readouterr().out
    assert "preloaded 2 clip(s)" in output and "1 computed, 0 already cached, 1 failed" in output
    assert f"  {huge}: RESOURCE_EXHAUSTED: clip {huge} is 16.0 MiB" in output
