"""`voxcache`: the command line for the Embedder and the Synthesizer.

    voxcache say "Hello there." --voice ref.wav -o out.wav
    voxcache say "Hello again." --voice-id narrator -o out.wav --stream
    voxcache voices register narrator ref.wav | list | delete narrator
    voxcache preload clips.txt          # one audio path per line ('-' reads stdin)
    voxcache stats
    voxcache up                         # Redis + Embedder + Synthesizer locally, Ctrl-C stops

Addresses come from --embedder/--synthesizer or VOXCACHE_EMBEDDER/VOXCACHE_SYNTHESIZER.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from tqdm import tqdm

from voxcache.embedder import DEFAULT_TARGET, EmbedderClient
from voxcache.errors import VoxcacheError
from voxcache.synthesizer import DEFAULT_SYNTH_TARGET, SynthesizerClient


def _say(args: argparse.Namespace) -> int:
    voice = {"voice": args.voice} if args.voice else {"voice_id": args.voice_id}
    options = dict(item.split("=", 1) for item in args.option)
    with SynthesizerClient(args.synthesizer, timeout=args.timeout) as client:
        common = dict(language=args.language, speed=args.speed, backend=args.backend, options=options, **voice)
        if args.stream:
            pcm, header, info = bytearray(), b"", None
            with tqdm(desc="sentences", unit="sentence", disable=args.quiet) as bar:
                for chunk in client.stream(args.text, **common):
                    pcm += chunk.audio
                    info = info or chunk
                    if chunk.last:
                        header, timings = chunk.wav_header, chunk.timings_ms
                    else:
                        bar.update(1)
            Path(args.output).write_bytes(header + pcm)
            assert info is not None
            print(
                f"wrote {args.output}: {len(pcm) / 2 / info.sample_rate:.2f} s at {info.sample_rate} Hz, "
                f"voice {info.backend_voice} (cosine {info.similarity:.3f}), "
                f"conditioning {'hit' if info.conditioning_cache_hit else 'miss'}, {_fmt(timings)}"
            )
        else:
            speech = client.say(args.text, **common)
            speech.save(args.output)
            print(
                f"wrote {args.output}: {speech.duration_s:.2f} s at {speech.sample_rate} Hz, "
                f"{speech.backend} voice {speech.backend_voice} (cosine {speech.similarity:.3f}), "
                f"conditioning {'hit' if speech.conditioning_cache_hit else 'miss'}, {_fmt(speech.timings_ms)}"
            )
    return 0


def _fmt(timings: dict[str, float]) -> str:
    return ", ".join(f"{name} {ms:.0f} ms" for name, ms in timings.items())


def _voices(args: argparse.Namespace) -> int:
    with EmbedderClient(args.embedder, timeout=args.timeout) as client:
        if args.voices_command == "register":
            voice, embedding = client.register_voice(args.name, args.audio, overwrite=args.overwrite)
            print(
                f"registered {voice.voice_id}: {voice.duration_s:.1f} s, sha256 {voice.audio_sha256[:12]}…, "
                f"{'already cached' if embedding.cache_hit else 'computed'}, pinned"
            )
        elif args.voices_command == "list":
            voices = client.list_voices()
            for v in voices:
                print(f"{v.voice_id:32} {v.duration_s:6.1f} s  {','.join(v.encoders):12} {v.audio_sha256[:12]}")
            print(f"{len(voices)} voice(s)")
        else:
            print(f"deleted {client.delete_voice(args.name).voice_id}")
    return 0


def _paths(listing: str) -> list[Path]:
    lines = sys.stdin.read().splitlines() if listing == "-" else Path(listing).read_text().splitlines()
    return [Path(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _preload(args: argparse.Namespace) -> int:
    paths = _paths(args.filelist)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"error: {len(missing)} file(s) not found, e.g. {missing[0]}", file=sys.stderr)
        return 2
    bar = tqdm(total=len(paths), desc="preload", unit="clip", disable=args.quiet)

    def clips() -> Iterator[tuple[str, bytes]]:
        for path in paths:
            yield str(path), path.read_bytes()
            bar.update(1)

    with EmbedderClient(args.embedder, timeout=args.timeout) as client, bar:
        summary = client.preload(clips(), pin=args.pin)
    print(
        f"preloaded {summary.received} clip(s) in {summary.total_ms / 1000:.1f} s: {summary.computed} computed, "
        f"{summary.cached} already cached, {summary.failed} failed"
    )
    for failure in summary.failures:
        print(f"  {failure['label']}: {failure['code']}: {failure['message']}")
    return 1 if summary.failed else 0


def _stats(args: argparse.Namespace) -> int:
    with EmbedderClient(args.embedder, timeout=args.timeout) as client:
        stats = client.stats()
    latency = stats.pop("extraction_latency", {})
    for name, value in stats.items():
        print(f"{name:22} {value}")
    print(
        f"{'extraction p50/95/99':22} {latency.get('p50_ms', 0):.1f} / {latency.get('p95_ms', 0):.1f} / "
        f"{latency.get('p99_ms', 0):.1f} ms over {latency.get('samples', 0)} samples"
    )
    return 0


def _launcher() -> ModuleType | None:
    """services.launcher where the services are installed (a voxcache checkout), else None."""
    try:
        return importlib.import_module("services.launcher")
    except ImportError:
        return None


def _up(args: argparse.Namespace) -> int:
    # In this process, not a child: subprocess.call() SIGKILLs its child 0.25 s after a Ctrl-C,
    # which left Redis's folder (and Redis) behind.
    launcher = _launcher()
    if launcher is None:
        print(
            "error: `voxcache up` runs the services, which are not installed here; "
            "run it from a voxcache checkout after `make setup`",
            file=sys.stderr,
        )
        return 2
    return int(launcher.run(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxcache", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--embedder", default=os.environ.get("VOXCACHE_EMBEDDER", DEFAULT_TARGET))
    parser.add_argument("--synthesizer", default=os.environ.get("VOXCACHE_SYNTHESIZER", DEFAULT_SYNTH_TARGET))
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline of each call, seconds")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True)

    say = commands.add_parser("say", help="synthesize text in a voice to a WAV file")
    say.add_argument("text")
    source = say.add_mutually_exclusive_group(required=True)
    source.add_argument("--voice", type=Path, help="reference clip (WAV/FLAC/OGG, 1-30 s)")
    source.add_argument("--voice-id", help="a registered voice")
    say.add_argument("-o", "--output", default="out.wav")
    say.add_argument("--language", default="")
    say.add_argument("--speed", type=float, default=0.0, help="0.5-2.0 (default 1.0)")
    say.add_argument("--backend", default="")
    say.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option")
    say.add_argument("--stream", action="store_true", help="stream sentence by sentence")
    say.set_defaults(run=_say)

    voices = commands.add_parser("voices", help="register, list or delete named voices")
    voice_commands = voices.add_subparsers(dest="voices_command", required=True)
    register = voice_commands.add_parser("register")
    register.add_argument("name")
    register.add_argument("audio", type=Path)
    register.add_argument("--overwrite", action="store_true")
    voice_commands.add_parser("list")
    delete = voice_commands.add_parser("delete")
    delete.add_argument("name")
    voices.set_defaults(run=_voices)

    preload = commands.add_parser("preload", help="warm the cache with many clips")
    preload.add_argument("filelist", help="file with one audio path per line, or - for stdin")
    preload.add_argument("--pin", action="store_true", help="store without expiry")
    preload.set_defaults(run=_preload)

    stats = commands.add_parser("stats", help="Embedder counters and latency")
    stats.set_defaults(run=_stats)

    up = commands.add_parser("up", help="run Redis, the Embedder and the Synthesizer locally")
    launcher = _launcher()
    if launcher is not None:
        launcher.add_arguments(up)  # one list of flags for `voxcache up` and `python -m services.launcher`
    else:
        up.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    up.set_defaults(run=_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except VoxcacheError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, IsADirectoryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
