"""The `voxcache` command without live services: parsing, help, stats rows, paths, error lines, exits.

Where a failure needs a server to happen (a refused connection, a port that answers
but is not the Embedder), a real socket or a real gRPC server stands in; nothing is
mocked. Live-service behaviour is in test_cli.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from services.common.paths import REPO_ROOT
from services.common.redis_server import free_port
from voxcache import cli
from voxcache.cli_errors import CliError


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """stderr must be exactly one `error: ...` line, and never a traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# -- parsing ------------------------------------------------------------------------------
def test_global_options_work_before_and_after_the_command() -> None:
    parse = cli.build_parser().parse_args
    after = parse(["say", "Hi.", "--voice-id", "v", "--embedder", "e:1", "--synthesizer", "s:2", "--timeout=5", "-q"])
    assert (after.embedder, after.synthesizer, after.timeout, after.quiet) == ("e:1", "s:2", 5.0, True)
    before = parse(["--embedder", "e:1", "--timeout", "7", "say", "Hi.", "--voice-id", "v"])
    assert (before.embedder, before.timeout, before.quiet) == ("e:1", 7.0, False)  # not reset by `say`'s parser
    nested = parse(["voices", "list", "--embedder", "e:3"])
    assert nested.embedder == "e:3" and nested.synthesizer == cli.DEFAULT_SYNTH_TARGET
    assert parse(["stats"]).timeout == cli.DEFAULT_TIMEOUT_S


def test_option_without_a_value_is_one_line_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "say", "Hi.", "--voice-id", "v", "--option", "novalue")
    line = one_error_line(err)
    assert code == 2 and "--option" in line and "KEY=VALUE" in line and "`voxcache say --help`" in line
    code, _, err = run(capsys, "say", "Hi.", "--voice-id", "v", "--no-such-flag")
    assert code == 2 and "--no-such-flag" in one_error_line(err)
    code, _, err = run(capsys, "preload", "list.txt", "--jobs", "0")
    assert code == 2 and "--jobs" in one_error_line(err)


def test_options_reach_the_request_as_pairs() -> None:
    argv = ["say", "Hi.", "--voice-id", "v", "--option", "voice=jf_alpha", "--option", "a=b=c"]
    args = cli.build_parser().parse_args(argv)
    assert dict(args.option) == {"voice": "jf_alpha", "a": "b=c"}


def test_help_shows_defaults_and_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOXCACHE_EMBEDDER", raising=False)
    monkeypatch.delenv("VOXCACHE_SYNTHESIZER", raising=False)
    parser = cli.build_parser()

    def flat(text: str) -> str:  # help wraps lines anywhere
        return " ".join(text.split())

    top = flat(parser.format_help())
    assert "(default: 120)" in top and f"(default: {cli.DEFAULT_TARGET}" in top
    subcommands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    say = flat(subcommands["say"].format_help())
    for shown in ("(default: out.wav)", "{en,zh}", "{kokoro,indextts2}", "(default: 1.0)", "(default: 120)"):
        assert shown in say, shown
    assert f"(default: {cli.DEFAULT_SYNTH_TARGET}" in say  # global options, also after the command
    assert "(default: 4)" in flat(subcommands["preload"].format_help())
    up = flat(subcommands["up"].format_help())
    for shown in ("(default: 50051)", "(default: 50052)", "--data-dir", "--ephemeral", "(default: INFO)"):
        assert shown in up, shown


def test_backend_and_language_choices_match_the_services() -> None:
    from services.synthesizer.backends import BACKENDS
    from services.synthesizer.backends.indextts2 import IndexTTS2Backend
    from services.synthesizer.backends.kokoro_engine import ESPEAK_VOICES

    assert set(cli.BACKEND_LANGUAGES) == set(BACKENDS)
    assert set(cli.BACKEND_LANGUAGES["kokoro"]) == set(ESPEAK_VOICES)
    assert set(cli.BACKEND_LANGUAGES["indextts2"]) == set(IndexTTS2Backend.SUPPORTED_LANGUAGES)


# -- stats ---------------------------------------------------------------------------------
def test_stats_rows_are_for_people() -> None:
    stats = {
        "requests": 41,
        "hits": 16,
        "misses": 25,
        "hit_ratio": 0.3902439024390244,
        "local_hits": 15,
        "redis_hits": 1,
        "extractions": 24,
        "coalesced": 1,
        "errors": 0,
        "redis_errors": 0,
        "corrupt_entries": 0,
        "redis_available": True,
        "local_entries": 24,
        "local_bytes": 19_032,
        "redis_entries": 30,
        "local_capacity_bytes": 268_435_456,
        "extraction_latency": {"p50_ms": 243.79, "p95_ms": 1310.2, "p99_ms": 1402.0, "samples": 24},
        "write_back_pending": 3,
        "write_back_bytes": 2_466,
        "write_back_written": 1_120,
        "write_back_dropped": 0,
        "dropped_extractions": 6,
    }
    rows = dict(cli.stats_rows(stats))
    assert rows["redis write-back"] == "3 waiting (2.4 KiB), 1,120 written, 0 dropped (queue full)"
    assert rows["dropped extractions"] == "6 (every caller gone before the model ran)"
    assert not any(label.startswith(("write back", "dropped_")) for label in rows)  # no raw duplicates
    assert rows["hit ratio"] == "39.0 %" and "hit_ratio" not in rows
    assert rows["local cache"] == "24 entries, 18.6 KiB of 256.0 MiB"
    assert rows["extraction p50/95/99"] == "244 ms / 1.31 s / 1.40 s over 24 extractions"
    assert rows["redis"] == "available, 30 keys, 0 errors, 0 corrupt entries"
    stats["forward_passes"], stats["batched_clips"] = 20, 6
    stats["encoder_runtimes"] = {
        "ecapa": {"runtime": "onnxruntime", "forced": False, "warmup_ms": {"torch": 460.2, "onnxruntime": 125.4}}
    }
    rows = dict(cli.stats_rows(stats))
    assert rows["forward passes"] == "20 (6 clips shared a pass)"
    assert rows["ecapa runtime"] == "onnxruntime (fastest at start: onnxruntime 125 ms, torch 460 ms)"
    assert "encoder runtimes" not in rows
    stats.update(reencode_aliases=3, alias_hits=1200, warm_start_entries=2048, warm_start_bytes=1572864)
    stats["warm_start_ms"] = 41.5
    rows = dict(cli.stats_rows(stats))
    assert rows["re-encoded clips"] == "3 aliased to an entry of the same samples, 1,200 hits through an alias"
    assert rows["warm start"] == "2,048 hot entries (1.5 MiB) in L1 before SERVING, 42 ms"
    assert not any(label.startswith(("warm_start", "reencode", "alias")) for label in rows)
    empty = dict(cli.stats_rows({"hits": 0, "misses": 0, "hit_ratio": 0.0, "extraction_latency": {"samples": 0}}))
    assert empty["hit ratio"] == "n/a (no requests yet)" and empty["extraction p50/95/99"] == "no extractions yet"


# -- output and input files ----------------------------------------------------------------
def test_output_is_checked_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "out.wav"
    existing.write_bytes(b"precious")
    nowhere = f"127.0.0.1:{free_port()}"  # were any call made, this would fail with "cannot reach"
    say = ["--synthesizer", nowhere, "say", "Hi.", "--voice-id", "v"]
    code, _, err = run(capsys, *say, "-o", str(existing))
    line = one_error_line(err)
    assert code == 2 and "already exists" in line and "--force" in line and existing.read_bytes() == b"precious"
    code, _, err = run(capsys, *say, "-o", str(tmp_path / "missing" / "x.wav"))
    assert code == 2 and f"folder {tmp_path / 'missing'} does not exist" in one_error_line(err)
    code, _, err = run(capsys, *say, "-o", str(tmp_path))
    assert code == 2 and "is a folder" in one_error_line(err)
    code, _, err = run(capsys, *say, "-o", str(existing), "--force")  # allowed: now it does try the call
    assert code == 1 and "cannot reach the Synthesizer" in one_error_line(err)


def test_default_output_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("out.wav").write_bytes(b"earlier take")
    code, _, err = run(capsys, "--synthesizer", f"127.0.0.1:{free_port()}", "say", "Hi.", "--voice-id", "v")
    assert code == 2 and "out.wav already exists; pass --force" in one_error_line(err)


def test_output_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "x.wav"
    cli.write_output(target, b"RIFF", force=False)
    assert target.read_bytes() == b"RIFF" and [p.name for p in tmp_path.iterdir()] == ["x.wav"]
    with pytest.raises(CliError, match="--force"):
        cli.write_output(target, b"other", force=False)
    assert target.read_bytes() == b"RIFF" and [p.name for p in tmp_path.iterdir()] == ["x.wav"]
    cli.write_output(target, b"other", force=True)
    assert target.read_bytes() == b"other"


def test_missing_clip_and_list_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "say", "Hi.", "--voice", str(tmp_path / "none.wav"), "-o", str(tmp_path / "o.wav"))
    assert code == 2 and "--voice" in one_error_line(err) and "no such file" in err
    code, _, err = run(capsys, "voices", "register", "n", str(tmp_path / "none.wav"))
    assert code == 2 and "CLIP" in one_error_line(err)
    code, _, err = run(capsys, "preload", str(tmp_path / "none.txt"))
    assert code == 2 and "cannot read the list" in one_error_line(err)


# -- error lines -----------------------------------------------------------------------------
def test_unreachable_address_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "stats", "--embedder", nowhere)
    line = one_error_line(err)
    assert code == 1 and f"cannot reach the Embedder at {nowhere}" in line and "`voxcache up`" in line
    listing = tmp_path / "clips.txt"
    clip = tmp_path / "a.wav"
    clip.write_bytes(b"x")
    listing.write_text(f"{clip}\n{clip}\n")
    code, stdout, err = run(capsys, "preload", str(listing), "--embedder", nowhere)
    assert code == 1 and "cannot reach the Embedder" in one_error_line(err) and stdout == ""  # not 2 failed clips


@pytest.fixture
def not_the_embedder() -> Iterator[str]:
    """A gRPC server that answers, but only the health service (as the Synthesizer would for Embedder calls)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_wrong_service_end_to_end(not_the_embedder: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "voices", "list", "--embedder", not_the_embedder)
    line = one_error_line(err)
    assert code == 1 and f"{not_the_embedder} answers, but it is not the Embedder" in line
    assert "UNIMPLEMENTED" not in line and "Method not found" not in line


# -- exits -------------------------------------------------------------------------------------
def test_ctrl_c_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_stats", interrupted)
    try:
        code, _, err = run(capsys, "stats")
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main() as a traceback")
    assert code == 130 and one_error_line(err) == "error: interrupted"


def test_closed_stdout_ends_quietly_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, _: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    empty = tmp_path / "none.txt"
    empty.write_text("# nothing to preload\n")  # prints a summary without calling any service
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["preload", str(empty)]) == 141
    assert capsys.readouterr().err == ""


def test_closed_stdout_ends_quietly_in_a_real_pipe(tmp_path: Path) -> None:
    """`voxcache ... | head -1`: the reader is gone before the output; no traceback, no 'Exception ignored'."""
    empty = tmp_path / "none.txt"
    empty.write_text("")
    read, write = os.pipe()
    os.close(read)  # the reader has already exited
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "clients" / "python" / "src"), str(REPO_ROOT)])}
    env.pop("PYTHONUNBUFFERED", None)  # as run from a shell: the summary waits in stdout's buffer until the end
    try:
        done = subprocess.run(
            [sys.executable, "-m", "voxcache.cli", "preload", str(empty)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write)
    assert done.returncode == 141 and done.stderr == ""
