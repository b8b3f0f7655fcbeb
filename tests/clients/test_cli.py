"""The `voxcache` command against live services (run in a worker thread: the servers share this loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from tests.conftest import Services
from voxcache import cli


async def voxcache(services: Services, *args: str) -> int:
    common = ["--embedder", services.embedder_address, "--synthesizer", services.synthesizer_address, "-q"]
    return await asyncio.to_thread(cli.main, [*common, *args])


async def test_say_voices_preload_stats(
    services: Services, speech: dict[str, Any], other_speech: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = tmp_path / "ref.wav"
    ref.write_bytes(speech["wav"])
    out = tmp_path / "out.wav"
    assert await voxcache(services, "say", "Hello from the command line.", "--voice", str(ref), "-o", str(out)) == 0
    samples, rate = sf.read(out)
    assert rate == 24_000 and len(samples) > rate // 2
    assert "conditioning miss" in capsys.readouterr().out

    streamed = tmp_path / "streamed.wav"
    args = ["say", "Hello from the command line.", "--voice", str(ref), "-o", str(streamed), "--stream"]
    assert await voxcache(services, *args) == 0
    assert streamed.read_bytes() == out.read_bytes()
    assert "conditioning hit" in capsys.readouterr().out

    assert await voxcache(services, "voices", "register", "cli-voice", str(ref)) == 0
    assert await voxcache(services, "voices", "list") == 0
    listing = capsys.readouterr().out
    assert "cli-voice" in listing and "1 voice(s)" in listing
    by_name = tmp_path / "by_name.wav"
    assert await voxcache(services, "say", "By name.", "--voice-id", "cli-voice", "-o", str(by_name)) == 0
    assert await voxcache(services, "voices", "delete", "cli-voice") == 0
    assert "deleted cli-voice" in capsys.readouterr().out

    other = tmp_path / "other.wav"
    other.write_bytes(other_speech)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio" * 20)
    listing_file = tmp_path / "clips.txt"
    listing_file.write_text(f"{ref}\n# a comment\n{other}\n{bad}\n")
    assert await voxcache(services, "preload", str(listing_file)) == 1  # one clip failed
    output = capsys.readouterr().out
    assert "preloaded 3 clip(s)" in output and "1 computed, 1 already cached, 1 failed" in output
    assert "bad.wav: INVALID_ARGUMENT" in output

    assert await voxcache(services, "stats") == 0
    assert "hit_ratio" in capsys.readouterr().out


async def test_errors_are_readable_and_exit_non_zero(
    services: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await voxcache(services, "say", "Hi.", "--voice-id", "nobody", "-o", str(tmp_path / "x.wav")) == 1
    assert "NOT_FOUND: Embedder: voice 'nobody' is not registered" in capsys.readouterr().err
    assert await voxcache(services, "say", "Hi.", "--voice", str(tmp_path / "missing.wav")) == 2
    missing_list = tmp_path / "list.txt"
    missing_list.write_text("/does/not/exist.wav\n")
    assert await voxcache(services, "preload", str(missing_list)) == 2
    assert "1 file(s) not found" in capsys.readouterr().err
