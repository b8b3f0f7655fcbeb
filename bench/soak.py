"""Soak bench: a real Embedder under a steady mixed load for minutes, Redis restarted twice.

Run by hand, not in CI (`make soak`; ten minutes by default):

    .venv/bin/python -m bench.soak                      # 600 s at 6 req/s
    .venv/bin/python -m bench.soak --duration 120 --rate 4 --check

What it does, all on 127.0.0.1:
- starts its own redis-server with the append-only file on, in a temp data folder
  (services/common/redis_server.LocalRedis), and the Embedder as a separate process
  (`python -m services.embedder.server`), so the RSS sampled is the Embedder's alone;
- sends an open-loop schedule (request i at start + i/rate, whatever the answers take)
  of hits (by voice_id and by an upload seen before), misses (a clip never seen), voice
  registrations and deletions, through the SDK, each with a deadline;
- kills redis-server with SIGKILL at 1/3 of the run and stops it with SIGTERM at 2/3,
  each time restarting it on the same folder and port a few seconds later;
- samples the Embedder's RSS every second;
- at the end asks which voices still resolve: every voice registered and not deleted
  must be listed by ListVoices (read from Redis) and answer Embed by voice_id.
It prints a summary and writes bench/results/soak.json and soak.png; `--check` exits 1
when a target is missed (0 lost voices, RSS growth < 5 % after the warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import soak_report as report
from bench.clips import synthesize, wav_bytes
from bench.report import REPO_ROOT, RESULTS_DIR, cpu_model, shown, write_json
from services.common.redis_server import LocalRedis, free_port
from voxcache import AsyncEmbedderClient, VoxcacheError

log = logging.getLogger("bench.soak")
SENTENCE = "A steady stream of voices arrives while the cache and its Redis are restarted underneath."


@dataclass(frozen=True)
class SoakConfig:
    duration_s: float = 600.0
    #: Requests started per second, whatever the answers take (open loop).
    rate: float = 6.0
    #: Share of each operation; hits are half by voice_id, half by an upload seen before.
    mix: dict[str, float] = field(default_factory=lambda: {"hit": 0.7, "miss": 0.15, "register": 0.1, "delete": 0.05})
    clip_s: float = 3.0
    #: Not in the RSS growth figure (min(120 s, a fifth of the run)): start-up, the first
    #: forward passes and the first RSS swings (soak_report.rss_growth says why it compares
    #: high-water marks rather than medians).
    warmup_s: float = 120.0
    #: RSS baseline and end are medians over windows this long.
    window_s: float = 30.0
    #: How long Redis stays down at each restart.
    outage_s: float = 3.0
    #: Requests sent up to this long after Redis is back are still counted as "in the outage".
    outage_tail_s: float = 3.0
    timeout_s: float = 5.0
    #: Deletes wait until this many voices are live, so hits by voice_id always have some.
    min_live_voices: int = 5
    threads: int = 1
    seed: int = 7

    @property
    def effective_warmup_s(self) -> float:
        return min(self.warmup_s, self.duration_s / 5)


class Clips:
    """Distinct clips of one espeak-ng sentence: a different first sample each, so a different key."""

    def __init__(self, base: np.ndarray) -> None:
        self._base = base
        self._next = 0

    def new(self) -> bytes:
        samples = self._base.copy()
        self._next += 1
        samples[0], samples[1] = self._next % 30_000, self._next // 30_000
        return wav_bytes(samples)


@dataclass
class Ledger:
    """What the run did, as the client saw it."""

    outcomes: list[report.Outcome] = field(default_factory=list)
    registered: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    #: Calls that timed out or failed unclearly: the voice may or may not exist.
    uncertain: set[str] = field(default_factory=set)
    #: Voices registered and not (being) deleted: what hits by voice_id pick from.
    live: list[str] = field(default_factory=list)
    #: The latest uploads answered OK: what hits by upload pick from (bounded: each is ~100 KB).
    seen_clips: deque[bytes] = field(default_factory=lambda: deque(maxlen=200))


class EmbedderProcess:
    """`python -m services.embedder.server` as a child process, its log in a file."""

    def __init__(self, redis_url: str, workdir: Path, threads: int) -> None:
        self.port = free_port()
        self.log_path = workdir / "embedder.log"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "clients" / "python" / "src"), str(REPO_ROOT)]),
            # A fresh signing key per run: the signed record path is the one production uses.
            "VOXCACHE_CACHE_HMAC_KEYS": f"soak:{secrets.token_urlsafe(32)}",
        }
        argv = ["--port", str(self.port), "--metrics-port", "0", "--redis-url", redis_url, "--threads", str(threads)]
        argv += ["--cache-prefix", "soak", "--log-level", "WARNING"]
        self.argv = argv
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.embedder.server", *argv],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        self.target = f"127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    async def ready(self, client: AsyncEmbedderClient, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Embedder exited with {self.process.returncode}: {self.log_tail()}")
            try:
                await client.stats(timeout=2)
                return
            except VoxcacheError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the Embedder did not answer within {timeout_s:.0f} s") from None
                await asyncio.sleep(0.5)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_lines(self, limit: int = 60) -> list[str]:
        """The Embedder's own warnings and errors (it runs at WARNING), for the results: why a request failed."""
        return self.log_path.read_text(errors="replace").splitlines()[-limit:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Soak:
    def __init__(self, config: SoakConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.rng = np.random.default_rng(config.seed)
        self.ledger = Ledger()
        self.restarts: list[dict[str, Any]] = []
        self.rss_samples: list[tuple[float, int]] = []
        self._outages: list[tuple[float, float]] = []  # (down at, back at) in seconds since start
        self._voice_ids = 0
        self._started = 0.0
        #: Voices deleted OK that Redis lists again at the end (a delete lost in a crash).
        self._resurrected: list[str] = []

    # -- the run ------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        c = self.config
        load_before = os.getloadavg()
        clips = Clips(synthesize(SENTENCE, c.clip_s, self.workdir))
        redis = LocalRedis(data_dir=self.workdir / "redis").start()
        embedder = EmbedderProcess(redis.url, self.workdir, c.threads)
        try:
            async with AsyncEmbedderClient(embedder.target, timeout=c.timeout_s) as client:
                await embedder.ready(client)
                for _ in range(c.min_live_voices):  # something for the first hits by voice_id
                    await self._register(client, clips.new(), sent_s=0.0)
                self._started = time.monotonic()
                sampler = asyncio.create_task(self._sample_rss(embedder))
                chaos = asyncio.create_task(self._restart_redis(redis))
                await self._drive(client, clips)
                await chaos
                sampler.cancel()
                await asyncio.sleep(c.outage_tail_s)  # the voice cache's second has long passed
                resolvable = await self._resolvable(client)
                stats = await client.stats(timeout=10)
        finally:
            embedder.close()
            redis.close()
        return self._results(resolvable, stats, embedder, load_before)

    async def _drive(self, client: AsyncEmbedderClient, clips: Clips) -> None:
        """Open loop: request i starts at i / rate seconds, in its own task, whatever the others do."""
        c = self.config
        ops, weights = list(c.mix), np.array(list(c.mix.values()), dtype=float)
        total = int(c.duration_s * c.rate)
        tasks: set[asyncio.Task[None]] = set()
        for i in range(total):
            delay = self._started + i / c.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            op = str(self.rng.choice(ops, p=weights / weights.sum()))
            task = asyncio.create_task(self._one(client, clips, op))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if i % int(c.rate * 60) == 0:
                log.info("t=%4.0f s: %d requests sent, %d in flight", self._now(), i, len(tasks))
        await asyncio.gather(*tasks)

    async def _one(self, client: AsyncEmbedderClient, clips: Clips, op: str) -> None:
        ledger = self.ledger
        if op == "delete" and len(ledger.live) <= self.config.min_live_voices:
            op = "register"  # keep enough live voices for the hits
        if op == "hit" and self.rng.random() < 0.5 and ledger.seen_clips:
            clip = ledger.seen_clips[int(self.rng.integers(len(ledger.seen_clips)))]
            await self._timed("hit", client.embed(clip))
        elif op == "hit":
            voice_id = ledger.live[int(self.rng.integers(len(ledger.live)))]
            await self._timed("hit", client.embed(voice_id=voice_id))
        elif op == "miss":
            clip = clips.new()
            if await self._timed("miss", client.embed(clip)):
                ledger.seen_clips.append(clip)
        elif op == "register":
            await self._register(client, clips.new(), sent_s=self._now())
        else:
            await self._delete(client)

    async def _register(self, client: AsyncEmbedderClient, clip: bytes, sent_s: float) -> None:
        self._voice_ids += 1
        voice_id = f"soak-{self._voice_ids:05d}"
        code = await self._timed("register", client.register_voice(voice_id, clip), sent_s)
        if code == "OK":
            self.ledger.registered.add(voice_id)
            self.ledger.live.append(voice_id)
        elif code == "DEADLINE_EXCEEDED":
            self.ledger.uncertain.add(voice_id)

    async def _delete(self, client: AsyncEmbedderClient) -> None:
        live = self.ledger.live
        voice_id = live.pop(int(self.rng.integers(len(live))))  # no hit picks it from now on
        code = await self._timed("delete", client.delete_voice(voice_id))
        if code == "OK":
            self.ledger.deleted.add(voice_id)
        elif code == "DEADLINE_EXCEEDED":
            self.ledger.uncertain.add(voice_id)
        else:
            live.append(voice_id)  # refused (Redis down): still registered, still expected

    async def _timed(self, op: str, call: Any, sent_s: float | None = None) -> str:
        """Await one SDK call; record its outcome; return the status code name ("OK" on success)."""
        sent = self._now() if sent_s is None else sent_s
        t0 = time.perf_counter()
        code, message = "OK", ""
        try:
            await call
        except VoxcacheError as exc:
            code, message = exc.code.name, exc.message[:200]
        self.ledger.outcomes.append(report.Outcome(sent, op, code, time.perf_counter() - t0, message=message))
        return code

    # -- Redis restarts, RSS ------------------------------------------------------------------
    async def _restart_redis(self, redis: LocalRedis) -> None:
        """SIGKILL at 1/3 of the run, SIGTERM at 2/3; each time back on the same folder after `outage_s`."""
        c = self.config
        for fraction, how, stop in ((1 / 3, "kill -9", redis.kill), (2 / 3, "SIGTERM", redis.stop)):
            await asyncio.sleep(max(0.0, self._started + c.duration_s * fraction - time.monotonic()))
            down_at = self._now()
            self._outages.append((down_at, float("inf")))
            await asyncio.to_thread(stop)
            await asyncio.sleep(c.outage_s)
            await asyncio.to_thread(redis.start)
            back_at = self._now()
            self._outages[-1] = (down_at, back_at)
            self.restarts.append({"how": how, "at_s": round(down_at, 2), "back_s": round(back_at, 2)})
            log.info("t=%4.0f s: redis-server %s, back after %.1f s", down_at, how, back_at - down_at)

    async def _sample_rss(self, embedder: EmbedderProcess) -> None:
        while True:
            self.rss_samples.append((round(self._now(), 2), embedder.rss_bytes()))
            await asyncio.sleep(1.0)

    def _in_outage(self, outcome: report.Outcome) -> bool:
        """In flight at any moment from Redis going down to `outage_tail_s` after it was back."""
        ended = outcome.sent_s + outcome.latency_s
        return any(outcome.sent_s <= back + self.config.outage_tail_s and ended >= down for down, back in self._outages)

    def _now(self) -> float:
        return time.monotonic() - self._started

    # -- the end ------------------------------------------------------------------------------
    async def _resolvable(self, client: AsyncEmbedderClient) -> set[str]:
        """Voices Redis still lists (ListVoices reads Redis) that also answer Embed by voice_id."""
        listed = {v.voice_id for v in await client.list_voices(timeout=30)}
        resolvable = set()
        for voice_id in sorted(self.ledger.registered - self.ledger.deleted):
            if voice_id not in listed:
                continue
            try:
                await client.embed(voice_id=voice_id, timeout=30)
                resolvable.add(voice_id)
            except VoxcacheError as exc:
                log.warning("voice %s is listed but does not resolve: %s", voice_id, exc)
        self._resurrected = sorted(listed & self.ledger.deleted)
        return resolvable

    def _results(
        self, resolvable: set[str], stats: dict[str, Any], embedder: EmbedderProcess, load_before: Sequence[float]
    ) -> dict[str, Any]:
        c, ledger = self.config, self.ledger
        outcomes = [replace(o, in_outage=self._in_outage(o)) for o in ledger.outcomes]
        rss = report.rss_growth(self.rss_samples, c.effective_warmup_s, c.window_s)
        voices = report.lost_voices(ledger.registered, ledger.deleted, resolvable)
        results: dict[str, Any] = {
            "config": {**asdict(c), "effective_warmup_s": c.effective_warmup_s},
            "restarts": self.restarts,
            "latency_ms": report.latency_by_op(outcomes),
            "errors": report.errors_by_code(outcomes),
            "failures": report.failures(outcomes),
            "rss": rss,
            "voices": voices,
            "uncertain_voices": len(ledger.uncertain),
            "deleted_but_listed_again": self._resurrected,
            "embedder_log": embedder.log_lines(),
            "redis_log": redis_log(self.workdir / "redis"),
            "embedder_stats": stats,
            "targets": report.targets(voices, rss),
            "machine": {
                "cpu_count": os.cpu_count(),
                "cpu_model": cpu_model(),
                "loadavg_1m_before": round(load_before[0], 2),
                "loadavg_1m_after": round(os.getloadavg()[0], 2),
                "embedder_argv": embedder.argv,
            },
            "timeline": report.timeline(outcomes, bucket_s=5.0),
            "rss_samples": self.rss_samples,
        }
        return results


def redis_log(folder: Path, limit: int = 60) -> list[str]:
    """redis-server's log lines about persistence and slowness (AOF rewrites, fsync stalls, loading)."""
    path = folder / "redis.log"
    if not path.exists():
        return []
    words = ("AOF", "rewrite", "fsync", "Background", "loaded", "Loading", "latency", "WARNING")
    return [line for line in path.read_text(errors="replace").splitlines() if any(w in line for w in words)][-limit:]


def parse_args(argv: Sequence[str] | None) -> tuple[SoakConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    defaults = SoakConfig()
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds (default %(default)s)")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="requests/s (default %(default)s)")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="model threads (default %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where soak.json/png go")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.duration < 30 or args.rate <= 0:
        parser.error("--duration must be at least 30 s and --rate positive")
    return SoakConfig(duration_s=args.duration, rate=args.rate, threads=args.threads), args


def main(argv: Sequence[str] | None = None) -> int:
    config, args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    window = min(config.window_s, config.duration_s / 5)
    config = SoakConfig(**{**asdict(config), "window_s": window})
    with tempfile.TemporaryDirectory(prefix="voxcache-soak-") as tmp:
        results = asyncio.run(Soak(config, Path(tmp)).run())
    json_path = write_json(args.out_dir / "soak.json", results)
    png_path = args.out_dir / "soak.png"
    report.plot(results, png_path)
    print()
    print(report.summary(results))
    print(f"\nwrote {shown(json_path)}\nwrote {shown(png_path)}")
    return 1 if args.check and report.missed(results) else 0


if __name__ == "__main__":
    sys.exit(main())
