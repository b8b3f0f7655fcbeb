"""`voxcache`: the command line for the Embedder and the Synthesizer.

    voxcache up                         # Redis + Embedder + Synthesizer locally; Ctrl-C stops it
    voxcache say "Hello there." --voice ref.wav -o hello.wav
    voxcache voices register narrator ref.wav | list | delete narrator
    voxcache say "Hello again." --voice-id narrator -o again.wav
    voxcache preload clips.txt          # one audio path per line ('-' reads stdin)
    voxcache stats

Addresses come from --embedder/--synthesizer, else VOXCACHE_EMBEDDER/VOXCACHE_SYNTHESIZER.
TLS: --tls-ca (mTLS: plus --tls-cert/--tls-key), else VOXCACHE_TLS_CA, VOXCACHE_TLS_CLIENT_CERT,
VOXCACHE_TLS_CLIENT_KEY. A bearer token: --token, else VOXCACHE_TOKEN (never printed).
Global options work before or after the command (`voxcache say ... --synthesizer HOST:PORT`).
`voxcache COMMAND --help` shows each command's options and their defaults.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import grpc
from tqdm import tqdm

from voxcache import cli_output as out
from voxcache.cli_errors import (
    DELETE_FIELDS,
    REGISTER_FIELDS,
    SAY_FIELDS,
    SEARCH_FIELDS,
    CliError,
    Target,
    describe,
)
from voxcache.embedder import DEFAULT_TARGET, EmbedderClient
from voxcache.errors import VoxcacheError
from voxcache.synthesizer import DEFAULT_SYNTH_TARGET, SynthesizerClient
from voxcache.tls import ENV_CA, ENV_CERT, ENV_KEY, TLS, TLSError

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_OUTPUT = "out.wav"
#: The Synthesizer's backends and the languages each speaks (services/synthesizer/backends;
#: tests/clients/test_cli_units.py checks these against the services).
BACKEND_LANGUAGES: dict[str, tuple[str, ...]] = {"kokoro": ("en",), "indextts2": ("en", "zh")}
LANGUAGES = tuple(sorted({lang for langs in BACKEND_LANGUAGES.values() for lang in langs}))
DEFAULT_LANGUAGE = "en"
DEFAULT_BACKEND = "kokoro"
DEFAULT_JOBS = 4
#: Per-clip failures that are the service's, not the clip's: preload stops instead of listing each clip.
_SERVICE_FAILURES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED)


# -- parsing ------------------------------------------------------------------------------
class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the docstring's layout and shows every real default (not None, False or an empty value)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default:" in text or "%(default)" in text:
            return text
        if action.default in (None, False, "", [], argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point to --help, instead of usage text and exit."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message}; see `{self.prog} --help`", exit_code=2)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r} (e.g. --option voice=jf_alpha)")
    return key, value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _add_globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes. On commands their defaults are SUPPRESS, so a value given
    before the command is not reset by the command's parser; the help text names the real default."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options (before or after the command)") if not top else parser
    embedder = os.environ.get("VOXCACHE_EMBEDDER") or DEFAULT_TARGET
    synthesizer = os.environ.get("VOXCACHE_SYNTHESIZER") or DEFAULT_SYNTH_TARGET
    group.add_argument(
        "--embedder",
        metavar="HOST:PORT",
        default=default(embedder),
        help=f"the Embedder's address (default: {embedder}; VOXCACHE_EMBEDDER sets it)",
    )
    group.add_argument(
        "--synthesizer",
        metavar="HOST:PORT",
        default=default(synthesizer),
        help=f"the Synthesizer's address (default: {synthesizer}; VOXCACHE_SYNTHESIZER sets it)",
    )
    group.add_argument(
        "--timeout",
        type=_positive,
        metavar="SECONDS",
        default=default(DEFAULT_TIMEOUT_S),
        help=f"deadline of each call (default: {DEFAULT_TIMEOUT_S:g})",
    )
    group.add_argument(
        "--tls-ca",
        metavar="PEM",
        default=default(None),
        help=f"CA that signed the services' certificates: connect over TLS ({ENV_CA} sets it)",
    )
    group.add_argument(
        "--tls-cert",
        metavar="PEM",
        default=default(None),
        help=f"client certificate, for services that require mTLS; with --tls-key ({ENV_CERT} sets it)",
    )
    group.add_argument("--tls-key", metavar="PEM", default=default(None), help=f"key of --tls-cert ({ENV_KEY} sets it)")
    group.add_argument(
        "--token",
        metavar="TOKEN",
        default=default(None),
        help="bearer token sent with every call (VOXCACHE_TOKEN sets it; prefer it: a flag shows in `ps`)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress output (progress is shown only on a terminal, on stderr)",
    )


def _command(commands: Any, name: str, help_text: str, **settings: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text, formatter_class=HelpFormatter
    )
    _add_globals(parser, top=False)
    parser.set_defaults(**settings)
    return parser


def _tls(args: argparse.Namespace) -> TLS | None:
    """--tls-* flags, else VOXCACHE_TLS_* variables; None (plaintext) when neither names a file."""
    ca, cert, key = (
        getattr(args, flag, None) or os.environ.get(env) or None
        for flag, env in (("tls_ca", ENV_CA), ("tls_cert", ENV_CERT), ("tls_key", ENV_KEY))
    )
    if ca is None and cert is None and key is None:
        return None
    return TLS(ca=ca, cert=cert, key=key)


def _security(args: argparse.Namespace) -> dict[str, Any]:
    """The `tls` and `token` arguments of a client, from flags and environment.

    A file that is missing or not a usable certificate is a command-line error (exit 2)
    before any call; the token is never part of a message.
    """
    token = getattr(args, "token", None) or os.environ.get("VOXCACHE_TOKEN") or None
    tls = _tls(args)
    try:
        if tls is not None:
            tls.credentials()  # read and check the files now, so the error names them
    except TLSError as error:
        raise CliError(f"{error}; check --tls-ca / --tls-cert / --tls-key", 2) from None
    return {"tls": tls, "token": token}


def embedder_client(args: argparse.Namespace) -> EmbedderClient:
    try:
        return EmbedderClient(args.embedder, timeout=args.timeout, **_security(args))
    except ValueError as error:  # a token gRPC cannot carry
        raise CliError(f"{error}; check --token / VOXCACHE_TOKEN", 2) from None


def synthesizer_client(args: argparse.Namespace) -> SynthesizerClient:
    try:
        return SynthesizerClient(args.synthesizer, timeout=args.timeout, **_security(args))
    except ValueError as error:
        raise CliError(f"{error}; check --token / VOXCACHE_TOKEN", 2) from None


def launcher_module() -> tuple[ModuleType | None, str]:
    """services.launcher if this is a checkout with the services installed, else None and why not."""
    try:
        return importlib.import_module("services.launcher"), ""
    except ImportError as exc:
        return None, str(exc)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="voxcache", description=__doc__, formatter_class=HelpFormatter)
    _add_globals(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    say = _command(
        commands, "say", "synthesize text in a voice to a WAV file", run=_say, service="Synthesizer", fields=SAY_FIELDS
    )
    say.add_argument("text", metavar="TEXT", help="what to say (up to 2,000 characters)")
    source = say.add_mutually_exclusive_group(required=True)
    source.add_argument("--voice", type=Path, metavar="CLIP", help="reference clip: WAV, FLAC or OGG, 1-30 s")
    source.add_argument("--voice-id", metavar="NAME", help="a voice registered with `voxcache voices register`")
    say.add_argument("-o", "--output", type=Path, metavar="FILE", default=Path(DEFAULT_OUTPUT), help="WAV to write")
    say.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    languages = "; ".join(f"{backend}: {', '.join(langs)}" for backend, langs in BACKEND_LANGUAGES.items())
    say.add_argument(
        "--language",
        choices=LANGUAGES,
        default="",
        help=f"language of TEXT ({languages}) (default: {DEFAULT_LANGUAGE})",
    )
    say.add_argument("--speed", type=float, default=1.0, metavar="X", help="speaking rate, 0.5-2.0")
    say.add_argument(
        "--backend",
        choices=tuple(BACKEND_LANGUAGES),
        default="",
        help=f"TTS backend (default: the Synthesizer's own, {DEFAULT_BACKEND} unless it was started otherwise)",
    )
    say.add_argument(
        "--option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option, repeatable (kokoro: voice=NAME speaks that bundled voice)",
    )
    say.add_argument(
        "--score",
        action="store_true",
        help="also report clone quality: the ECAPA cosine between the speech and the reference voice "
        "(the SIM of TTS papers; one extra speaker-encoder pass at the Embedder)",
    )
    say.add_argument(
        "--stream",
        action="store_true",
        help="use the streaming call even when not on a terminal (on a terminal `say` always streams, "
        "to show progress per sentence; the WAV is the same)",
    )

    voices = _command(commands, "voices", "register, list or delete named voices", service="Embedder", fields={})
    voice_commands = voices.add_subparsers(dest="voices_command", required=True, metavar="ACTION")
    register = _command(
        voice_commands, "register", "name a reference clip (kept, pinned)", run=_register, fields=REGISTER_FIELDS
    )
    register.add_argument("name", metavar="NAME", help="1-64 characters from A-Z a-z 0-9 . _ -")
    register.add_argument("audio", type=Path, metavar="CLIP", help="reference clip: WAV, FLAC or OGG, 1-30 s")
    register.add_argument("--overwrite", action="store_true", help="replace a voice of that name")
    _command(voice_commands, "list", "the registered voices", run=_list)
    delete = _command(voice_commands, "delete", "forget a voice", run=_delete, fields=DELETE_FIELDS)
    delete.add_argument("name", metavar="NAME")

    search = _command(
        commands,
        "search",
        "the registered voices nearest to a clip or to a voice, by cosine",
        run=_search,
        service="Embedder",
        fields=SEARCH_FIELDS,
    )
    query = search.add_mutually_exclusive_group(required=True)
    query.add_argument("--voice", type=Path, metavar="CLIP", help="reference clip: WAV, FLAC or OGG, 1-30 s")
    query.add_argument("--voice-id", metavar="NAME", help="a registered voice (left out of its own results)")
    search.add_argument("-k", type=int, default=10, metavar="N", help="how many voices, 1-100")
    search.add_argument("--encoder", default="", metavar="NAME", help="whose vectors to compare (default: ecapa)")

    preload = _command(
        commands, "preload", "warm the Embedder's cache with many clips", run=_preload, service="Embedder", fields={}
    )
    preload.add_argument(
        "filelist", metavar="LIST", help="file with one audio path per line ('#' comments), - for stdin"
    )
    preload.add_argument("--pin", action="store_true", help="keep them without expiry (else they age out after 7 days)")
    preload.add_argument(
        "--jobs", type=_at_least_one, default=DEFAULT_JOBS, metavar="N", help="clips in flight at once"
    )

    _command(commands, "stats", "the Embedder's counters and latency", run=_stats, service="Embedder", fields={})

    up = commands.add_parser(
        "up",
        help="run Redis, the Embedder and the Synthesizer locally (Ctrl-C stops them)",
        description="Run Redis, the Embedder and the Synthesizer locally; Ctrl-C stops them.\n"
        "'voxcache is up' is printed only once both answer and the Synthesizer has warmed up;\n"
        "a taken port or a crashed service is an error and a non-zero exit. Redis keeps\n"
        "registered voices in a data folder across restarts unless --ephemeral.",
        formatter_class=HelpFormatter,
    )
    launcher, _ = launcher_module()
    if launcher is not None:
        launcher.add_arguments(up)
    else:
        up.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    up.set_defaults(run=_up, service="", fields={})
    return parser


# -- commands -----------------------------------------------------------------------------
def check_output(path: Path, force: bool) -> Path:
    """Refuse, before any work, an output that cannot be written or would silently replace a file."""
    if path.is_dir():
        raise CliError(f"-o {path} is a folder; give a file name, e.g. -o {path / DEFAULT_OUTPUT}", 2)
    folder = path.parent
    if not folder.is_dir():
        raise CliError(f"folder {folder} does not exist (from -o {path}); create it, or choose another -o FILE", 2)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"cannot write into {folder} (from -o {path}); choose another -o FILE", 2)
    if path.exists() and not force:
        raise CliError(f"{path} already exists; pass --force to overwrite it, or choose another -o FILE", 2)
    return path


def write_output(path: Path, data: bytes, force: bool) -> None:
    """Write through a temporary file, so an interrupted run never leaves half a WAV under the real name."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(data)
        if path.exists() and not force:  # appeared while we were synthesizing
            raise CliError(f"{path} appeared meanwhile; pass --force to overwrite it, or choose another -o FILE", 1)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def check_clip(path: Path, name: str) -> Path:
    """A reference clip that exists and is readable, checked before anything is sent."""
    if not path.is_file():
        raise CliError(f"{name} {path}: no such file", 2)
    if not os.access(path, os.R_OK):
        raise CliError(f"{name} {path}: not readable (permission denied)", 2)
    return path


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress only for a person watching: stderr is a terminal and -q was not given."""
    return not args.quiet and sys.stderr.isatty()


@dataclass(frozen=True)
class SaidSpeech:
    """What `say` reports, whichever call produced the audio."""

    audio: bytes
    duration_s: float
    sample_rate: int
    backend_voice: str
    similarity: float
    conditioning_cache_hit: bool
    timings_ms: dict[str, float]
    speaker_similarity: float | None = None
    speaker_similarity_error: str = ""


def say_streamed(chunks: Iterable[Any], progress: out.SentenceProgress) -> SaidSpeech:
    """Assemble the WAV from the streamed sentences, advancing `progress` per finished sentence."""
    pcm, first, header, timings, last = bytearray(), None, b"", {}, None
    try:
        for chunk in chunks:
            first = first or chunk
            pcm += chunk.audio
            if chunk.last:
                header, timings, last = chunk.wav_header, chunk.timings_ms, chunk
            else:
                progress.sentence_done(len(chunk.audio), chunk.sample_rate)
    finally:
        progress.close()
    if first is None:
        raise CliError("the Synthesizer ended the stream without any audio", 1)
    rate = first.sample_rate
    return SaidSpeech(
        bytes(header + pcm),
        len(pcm) / 2 / rate,
        rate,
        first.backend_voice,
        first.similarity,
        first.conditioning_cache_hit,
        timings,
        getattr(last, "speaker_similarity", None),
        getattr(last, "speaker_similarity_error", ""),
    )


def _say(args: argparse.Namespace) -> int:
    output = check_output(args.output, args.force)
    voice = {"voice": check_clip(args.voice, "--voice")} if args.voice else {"voice_id": args.voice_id}
    show = progress_enabled(args)
    request = dict(language=args.language, speed=args.speed, backend=args.backend, options=dict(args.option), **voice)
    if args.score:
        request["score"] = True
    with synthesizer_client(args) as client:
        if args.stream or show:
            said = say_streamed(client.stream(args.text, **request), out.SentenceProgress(sys.stderr, show))
        else:
            speech = client.say(args.text, **request)
            said = SaidSpeech(
                speech.audio,
                speech.duration_s,
                speech.sample_rate,
                speech.backend_voice,
                speech.similarity,
                speech.conditioning_cache_hit,
                speech.timings_ms,
                speech.speaker_similarity,
                speech.speaker_similarity_error,
            )
    write_output(output, said.audio, args.force)
    print(
        f"wrote {output}: {out.seconds(said.duration_s)} of speech at {said.sample_rate / 1000:g} kHz, "
        f"{out.voice_summary(said.backend_voice, said.similarity)}; "
        f"conditioning {'hit' if said.conditioning_cache_hit else 'miss'}; {out.timings(said.timings_ms)}"
    )
    if args.score:
        print(out.clone_quality(said.speaker_similarity, said.speaker_similarity_error))
    return 0


def _register(args: argparse.Namespace) -> int:
    clip = check_clip(args.audio, "CLIP")
    with embedder_client(args) as client:
        voice, embedding = client.register_voice(args.name, clip, overwrite=args.overwrite)
    print(
        f"registered {voice.voice_id}: {out.seconds(voice.duration_s)} clip, sha256 {voice.audio_sha256[:12]}…, "
        f"conditioning {'already cached' if embedding.cache_hit else 'computed'}, pinned "
        f"(kept until `voxcache voices delete {voice.voice_id}`)"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    with embedder_client(args) as client:
        voices = client.list_voices()
    if not voices:
        print("no voices registered; add one with `voxcache voices register NAME CLIP`")
        return 0
    print(f"{'NAME':32} {'CLIP':>8}  {'ENCODERS':12} {'SHA256':12}  REGISTERED")
    for v in voices:
        registered = datetime.fromtimestamp(v.created_unix_ms / 1000).strftime("%Y-%m-%d %H:%M")
        encoders = ",".join(v.encoders)
        print(f"{v.voice_id:32} {out.seconds(v.duration_s):>8}  {encoders:12} {v.audio_sha256[:12]}  {registered}")
    print(f"{len(voices)} voice{'' if len(voices) == 1 else 's'}")
    return 0


def _search(args: argparse.Namespace) -> int:
    clip = check_clip(args.voice, "--voice") if args.voice is not None else None
    with embedder_client(args) as client:
        found = client.search_voices(clip, voice_id=args.voice_id, k=args.k, encoder=args.encoder)
    if not found.hits:
        print(f"no voices to compare with ({found.searched} searched); register some with `voxcache voices register`")
        return 0
    print(f"{'#':>3}  {'NAME':32} {'COSINE':>7}")
    for rank, hit in enumerate(found.hits, 1):
        print(f"{rank:>3}  {hit.voice.voice_id:32} {hit.cosine:>7.3f}")
    print(f"nearest {len(found.hits)} of {found.searched} voices ({found.encoder})")
    return 0


def _delete(args: argparse.Namespace) -> int:
    with embedder_client(args) as client:
        print(f"deleted {client.delete_voice(args.name).voice_id}")
    return 0


def read_listing(listing: str) -> list[Path]:
    """The audio paths of a preload list: one per line, blank lines and '#' comments skipped."""
    try:
        text = sys.stdin.read() if listing == "-" else Path(listing).read_text()
    except OSError as exc:
        raise CliError(f"cannot read the list {listing}: {exc.strerror or exc}", 2) from None
    return [Path(line.strip()) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@dataclass(frozen=True)
class ClipResult:
    """How one preloaded clip ended: 'computed', 'cached' or 'failed' (with the status code name)."""

    index: int
    label: str
    outcome: str
    code: str = ""
    message: str = ""


def preload_clips(
    client: EmbedderClient,
    paths: list[Path],
    *,
    jobs: int,
    pin: bool,
    on_done: Callable[[ClipResult], None],
) -> list[ClipResult]:
    """Embed each clip (at most `jobs` in flight), calling `on_done` as each one *finishes*.

    The SDK's preload() streams every clip and answers once, at the end, so a bar fed by
    it can only count uploads. One Embed call per clip lets progress count finished clips.
    A failure of the service itself (unreachable, wrong address) stops the run.
    """

    def one(index: int, path: Path) -> ClipResult:
        try:
            embedding = client.embed(path, pin=pin)
        except VoxcacheError as error:
            if error.code in _SERVICE_FAILURES:
                raise
            return ClipResult(index, str(path), "failed", error.code.name, error.message)
        except OSError as exc:
            return ClipResult(index, str(path), "failed", "UNREADABLE", exc.strerror or str(exc))
        return ClipResult(index, str(path), "cached" if embedding.cache_hit else "computed")

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="preload")
    results: list[ClipResult] = []
    try:
        for future in as_completed([pool.submit(one, i, path) for i, path in enumerate(paths)]):
            results.append(future.result())
            on_done(results[-1])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # the caller closes the channel: calls in flight end
        raise
    pool.shutdown()
    return sorted(results, key=lambda r: r.index)


def _preload(args: argparse.Namespace) -> int:
    paths = read_listing(args.filelist)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise CliError(
            f"{len(missing)} file(s) of {len(paths)} in {args.filelist} not found, e.g. {missing[0]}; "
            "fix the list (paths are relative to the current folder)",
            2,
        )
    started = time.monotonic()
    bar = tqdm(total=len(paths), desc="preload", unit="clip", disable=not progress_enabled(args), file=sys.stderr)
    with embedder_client(args) as client, bar:
        results = preload_clips(client, paths, jobs=args.jobs, pin=args.pin, on_done=lambda _: bar.update(1))
    tally = {outcome: sum(r.outcome == outcome for r in results) for outcome in ("computed", "cached", "failed")}
    print(
        f"preloaded {len(results)} clip(s) in {out.seconds(time.monotonic() - started)}: {tally['computed']} computed, "
        f"{tally['cached']} already cached, {tally['failed']} failed"
    )
    for failure in (r for r in results if r.outcome == "failed"):
        print(f"  {failure.label}: {failure.code}: {failure.message}")
    return 1 if tally["failed"] else 0


def stats_rows(stats: dict[str, Any]) -> list[tuple[str, str]]:
    """GetStats as label/value rows a person reads: counts with separators, a percentage, units."""
    stats = dict(stats)
    get = stats.pop
    latency = get("extraction_latency", {}) or {}
    requests, hits, misses = get("requests", 0), get("hits", 0), get("misses", 0)
    ratio = get("hit_ratio", 0.0)
    redis_entries, redis_up = get("redis_entries", -1), get("redis_available", False)
    rows = [
        ("requests", out.count(requests)),
        (
            "hits",
            f"{out.count(hits)} (local {out.count(get('local_hits', 0))}, redis {out.count(get('redis_hits', 0))})",
        ),
        ("misses", out.count(misses)),
        ("hit ratio", out.percent(ratio) if hits + misses else "n/a (no requests yet)"),
        (
            "extractions",
            f"{out.count(get('extractions', 0))} ({out.count(get('coalesced', 0))} coalesced: joined one in flight)",
        ),
        # Queues (issue 10): extractions dropped unstarted, and the Redis write-back queue.
        ("dropped extractions", f"{out.count(get('dropped_extractions', 0))} (every caller gone before the model ran)"),
        (
            "redis write-back",
            out.write_back(*(get(f"write_back_{f}", 0) for f in ("pending", "bytes", "written", "dropped"))),
        ),
        ("errors", out.count(get("errors", 0))),
        (
            "redis",
            f"{'available' if redis_up else 'UNAVAILABLE'}, "
            + (f"{out.count(redis_entries)} keys, " if redis_entries >= 0 else "")
            + f"{out.count(get('redis_errors', 0))} errors, {out.count(get('corrupt_entries', 0))} corrupt entries",
        ),
        (
            "local cache",
            f"{out.count(get('local_entries', 0))} entries, {out.size(get('local_bytes', 0))} "
            f"of {out.size(get('local_capacity_bytes', 0))}",
        ),
    ]
    samples = latency.get("samples", 0)
    rows.append(
        (
            "extraction p50/95/99",
            " / ".join(out.milliseconds(latency.get(f"p{p}_ms", 0.0)) for p in (50, 95, 99))
            + f" over {out.count(samples)} extractions"
            if samples
            else "no extractions yet",
        )
    )
    passes, batched = get("forward_passes", 0), get("batched_clips", 0)
    rows.append(("forward passes", f"{out.count(passes)} ({out.count(batched)} clips shared a pass)"))
    for encoder, runtime in sorted((get("encoder_runtimes", {}) or {}).items()):
        rows.append((f"{encoder} runtime", runtime_row(runtime)))
    rows.append(
        (
            "re-encoded clips",
            f"{out.count(get('reencode_aliases', 0))} aliased to an entry of the same samples, "
            f"{out.count(get('alias_hits', 0))} hits through an alias",
        )
    )
    warmed = get("warm_start_entries", 0)
    warm_bytes, warm_ms = get("warm_start_bytes", 0), get("warm_start_ms", 0.0)
    rows.append(
        (
            "warm start",
            f"{out.count(warmed)} hot entries ({out.size(warm_bytes)}) in L1 before SERVING, "
            f"{out.milliseconds(warm_ms)}"
            if warmed
            else "nothing loaded (off, cold Redis, or no hot entries)",
        )
    )
    for backend, sim in sorted((get("speaker_similarity", {}) or {}).items()):
        rows.append(
            (
                f"similarity {backend}",
                f"p50 {sim['p50']:.3f} over {out.count(sim['samples'])} recent scores "
                f"({out.count(sim['scored'])} scored, {out.count(sim['failed'])} failed)",
            )
        )
    rows += [(name.replace("_", " "), str(value)) for name, value in stats.items()]  # fields added later
    return rows


def runtime_row(runtime: dict[str, Any]) -> str:
    """`onnxruntime (fastest at start: onnxruntime 125 ms, torch 460 ms)` or `... (forced)`."""
    if runtime.get("forced"):
        return f"{runtime['runtime']} (forced by --ecapa-runtime)"
    timed = sorted((runtime.get("warmup_ms") or {}).items(), key=lambda item: item[1])
    return f"{runtime['runtime']} (fastest at start: " + ", ".join(f"{n} {ms:.0f} ms" for n, ms in timed) + ")"


def _stats(args: argparse.Namespace) -> int:
    with embedder_client(args) as client:
        stats = client.stats()
    for label, value in stats_rows(stats):
        print(f"{label:22} {value}")
    return 0


def _up(args: argparse.Namespace) -> int:
    launcher, why = launcher_module()
    if launcher is None:
        raise CliError(
            f"`voxcache up` runs the services, which are not installed here ({why}); "
            "run it from a voxcache checkout after `make setup`",
            2,
        )
    return int(launcher.run(args))


# -- entry point --------------------------------------------------------------------------
def _target(args: argparse.Namespace) -> Target:
    tls = _tls(args) is not None
    if args.service == "Synthesizer":
        return Target("Synthesizer", args.synthesizer, "--synthesizer", tls)
    return Target("Embedder", args.embedder, "--embedder", tls)


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """The reader went away: point stdout at /dev/null, so the flush at exit cannot print 'Exception ignored'."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no real file (embedded, captured): nothing will flush it
        pass


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.run(args))
    except VoxcacheError as error:
        raise CliError(describe(error, _target(args), args.fields, args.timeout)) from None
    sys.stdout.flush()  # a closed pipe fails here, inside main's handlers, not at interpreter exit
    return code


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure is a single `error: ...` line on stderr and a non-zero status.

    1: the command failed; 2: the command line or a file named on it is wrong; 130: Ctrl-C;
    141: stdout was closed early (`voxcache stats | head -1`), as if killed by SIGPIPE.
    """
    try:
        return _run(argv)
    except CliError as error:
        _error(error.message)
        return error.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        _error(f"{exc.strerror or exc}:{where}")
        return 2
    except Exception as exc:  # the promise is no traceback; VOXCACHE_DEBUG=1 shows it
        if os.environ.get("VOXCACHE_DEBUG"):
            raise
        _error(f"unexpected {type(exc).__name__}: {exc}; rerun with VOXCACHE_DEBUG=1 for the traceback, and report it")
        return 1


if __name__ == "__main__":
    sys.exit(main())
