"""The `voxcache` command against live services (run in a worker thread: the servers share this loop)."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from tests.conftest import Services
from voxcache import EmbedderClient, cli


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
    assert "cli-voice" in listing and "\n1 voice\n" in listing
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
    stats = capsys.readouterr().out
    assert re.search(r"^hit ratio +\d+\.\d %$", stats, re.MULTILINE) and "hit_ratio" not in stats


async def test_errors_are_one_line_in_cli_terms(
    services: Services, speech: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await voxcache(services, "say", "Hi.", "--voice-id", "nobody", "-o", str(tmp_path / "x.wav")) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: voice 'nobody' is not registered; register it with `voxcache voices register nobody CLIP` "
        "(`voxcache voices list` shows the registered ones)\n"
    )
    assert await voxcache(services, "voices", "delete", "nobody") == 1
    assert "`voxcache voices register nobody CLIP`" in capsys.readouterr().err
    ref = tmp_path / "ref.wav"
    ref.write_bytes(speech["wav"])
    assert await voxcache(services, "voices", "register", "twice", str(ref)) == 0
    assert await voxcache(services, "voices", "register", "twice", str(ref)) == 1
    assert capsys.readouterr().err == "error: voice 'twice' already exists; pass --overwrite to replace it\n"
    assert await voxcache(services, "voices", "register", "twice", str(ref), "--overwrite") == 0
    args = ["say", "Hi.", "--voice-id", "twice", "-o", str(tmp_path / "y.wav")]
    assert await voxcache(services, *args, "--speed", "3") == 1
    assert capsys.readouterr().err.endswith("; check --speed\n")
    assert await voxcache(services, *args, "--option", "voice=nobody") == 1
    assert capsys.readouterr().err.endswith("; check --option voice=VALUE\n")
    swapped = ["--embedder", services.synthesizer_address, "-q", "stats"]
    assert await asyncio.to_thread(cli.main, swapped) == 1
    assert f"{services.synthesizer_address} answers, but it is not the Embedder" in capsys.readouterr().err
    missing_clip = ["say", "Hi.", "--voice", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "z.wav")]
    assert await voxcache(services, *missing_clip) == 2
    missing_list = tmp_path / "list.txt"
    missing_list.write_text("/does/not/exist.wav\n")
    assert await voxcache(services, "preload", str(missing_list)) == 2
    assert "1 file(s) of 1 in" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "y.wav").exists()


class Terminal(io.StringIO):
    """stderr as a terminal: where progress is shown."""

    def isatty(self) -> bool:
        return True


async def test_say_reports_the_match_and_shows_progress_on_a_terminal(
    services: Services,
    speech: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = tmp_path / "ref.wav"
    ref.write_bytes(speech["wav"])
    common = ["--embedder", services.embedder_address, "--synthesizer", services.synthesizer_address]
    text = "This is the first sentence. Here is a second one. And a third."
    plain = tmp_path / "plain.wav"
    assert await asyncio.to_thread(cli.main, [*common, "say", text, "--voice", str(ref), "-o", str(plain)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # not a terminal: no progress, only the summary
    # The espeak reference is far from every bundled voice: the CLI says so, in the README's words.
    weak = r"\(cosine 0\.[0-4]\d, weak match: kokoro picks a bundled voice, it does not clone\)"
    assert re.search(weak, captured.out), captured.out

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    shown = tmp_path / "shown.wav"
    assert await asyncio.to_thread(cli.main, [*common, "say", text, "--voice", str(ref), "-o", str(shown)]) == 0
    progress = screen.getvalue()
    assert "synthesizing: 1 sentence done" in progress and "3 sentences done" in progress
    assert "s of audio" in progress and "4 sentences" not in progress
    assert shown.read_bytes() == plain.read_bytes()  # streamed for progress; the same WAV
    assert capsys.readouterr().out.startswith(f"wrote {shown}: ")


async def test_preload_progress_counts_finished_clips(
    services: Services, speech: dict[str, Any], other_speech: bytes, tmp_path: Path
) -> None:
    """Each progress step comes after that clip's Embed has finished on the server, not after its upload."""
    clips = []
    for name, data in (("a.wav", speech["wav"]), ("b.wav", other_speech), ("c.wav", b"not audio" * 20)):
        (tmp_path / name).write_bytes(data)
        clips.append(tmp_path / name)

    def run() -> tuple[list[cli.ClipResult], list[int]]:
        with EmbedderClient(services.embedder_address) as client:
            before = client.stats()["requests"]
            finished_at_each_step: list[int] = []

            def on_done(_: cli.ClipResult) -> None:
                finished_at_each_step.append(client.stats()["requests"] - before)

            results = cli.preload_clips(client, clips, jobs=1, pin=False, on_done=on_done)
        return results, finished_at_each_step

    results, finished = await asyncio.to_thread(run)
    assert [r.outcome for r in results] == ["computed", "computed", "failed"] and results[2].code == "INVALID_ARGUMENT"
    assert all(done >= step for step, done in enumerate(finished, start=1)), finished
