"""Embedder benchmark: cache hits vs misses vs the floor of gRPC + one Redis round trip.

Run from the repository root:

    .venv/bin/python -m bench.embedder_bench            # full run, ~70 s on 2 cores
    .venv/bin/python -m bench.embedder_bench --quick    # smoke run, ~25 s: checks the harness only
    .venv/bin/python -m bench.embedder_bench --check    # exit 1 when a target is missed

Writes bench/results/embedder.json and bench/results/embedder.png and prints a table.

Why it is built this way:

* A cache hit is only interesting relative to what *any* gRPC service with a Redis
  behind it would cost on the same machine. So the same run starts a bare grpc.aio
  "floor" server whose handler does exactly one `await redis.get()` against the same
  private Redis and answers with a response of the real EmbedResponse's size, for a
  request of the real EmbedRequest's size. The Embedder's overhead is then the gap
  to that floor, independent of how fast this particular machine is.
* Servers and clients live in separate processes (multiprocessing 'spawn'): a client
  sharing the server's event loop would steal its CPU and hide queueing. The Embedder
  and the floor each run in their own child process, started the same way, with the
  same gRPC server options, so neither gets a structural advantage.
* Clients send pre-serialised request bytes and receive raw response bytes for both
  servers (identity serialisers), so the client-side cost is identical and every
  difference in the numbers is server-side. Responses are parsed and checked (hit or
  computed) outside the timed region.
* Sequential latency samples are interleaved in blocks across the series being
  compared, so slow drift (thermal, noisy neighbours) hits all series alike.
* Everything is bounded: sample counts, fixed load durations and per-RPC deadlines,
  on 127.0.0.1 only, with one private redis-server that is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import logging
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from math import gcd
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
EMBED_METHOD = "/voxcache.v1.Embedder/Embed"
FLOOR_SERVICE = "voxcache.bench.Floor"
FLOOR_METHOD = f"/{FLOOR_SERVICE}/Echo"
FLOOR_VALUE_KEY = "voxcache-bench:floor:value"
#: Size of one ECAPA conditioning record in Redis (see services/embedder/cache/record.py).
FLOOR_VALUE_BYTES = 793
VOICE_ID = "bench-voice"
SAMPLE_RATE = 16_000
#: Loopback only, and every channel gets its own TCP connection (grpc otherwise shares
#: subchannels between channels with identical arguments, which would make
#: "32 clients" one connection).
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.use_local_subchannel_pool", 1),
)
SENTENCES = (
    "The quick brown fox jumps over the lazy dog while the voice cache warms up for the next request.",
    "Speaker embeddings are computed once per distinct clip and then served from memory or from Redis.",
    "Every reference clip is hashed, looked up, and only on a miss decoded and sent through the model.",
)

log = logging.getLogger("bench.embedder")


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchConfig:
    """Sample counts and durations; the defaults finish in ~70 s on a 2-core machine."""

    clip_s: float = 5.0
    hit_samples: int = 1000
    hit_warmup: int = 100
    hit_block: int = 50
    miss_samples: int = 20
    miss_warmup: int = 4
    concurrency: int = 32
    channels: int = 4
    load_warmup_s: float = 0.5
    #: Measured seconds per round; each series gets `load_rounds` rounds, interleaved.
    load_duration_s: float = 2.0
    load_rounds: int = 3
    seed_requests: int = 100
    seed_concurrency: int = 4
    seed_reuse: float = 0.8
    memory_entries: int = 200
    memory_clip_s: float = 1.2
    threads: int = 2
    rpc_timeout_s: float = 60.0
    seed: int = 1234

    @classmethod
    def quick(cls) -> BenchConfig:
        """Small counts for checking that the harness works, not for numbers."""
        return cls(
            hit_samples=200,
            hit_warmup=50,
            miss_samples=5,
            miss_warmup=3,
            load_warmup_s=0.3,
            load_duration_s=1.0,
            load_rounds=2,
            seed_requests=30,
            memory_entries=40,
        )


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def summarize(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 (linear interpolation) and friends, in milliseconds."""
    if not samples_s:
        return {"n": 0}
    ms = np.asarray(samples_s, dtype=np.float64) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "n": len(ms),
        "p50_ms": round(float(p50), 4),
        "p95_ms": round(float(p95), 4),
        "p99_ms": round(float(p99), 4),
        "mean_ms": round(float(ms.mean()), 4),
        "min_ms": round(float(ms.min()), 4),
        "max_ms": round(float(ms.max()), 4),
    }


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else float("nan")


# ---------------------------------------------------------------------------------------------
# Audio: espeak-ng speech, 16 kHz 16-bit mono, exactly `seconds` long
# ---------------------------------------------------------------------------------------------
def synthesize(text: str, seconds: float, workdir: Path, voice: str = "en-us") -> np.ndarray:
    """Speech as int16 at 16 kHz, trimmed or zero-padded to exactly `seconds`.

    espeak-ng writes 22.05 kHz; a fixed length keeps every request the same size and
    every forward pass the same shape, so samples are comparable.
    """
    path = workdir / f"espeak-{hashlib.sha1(f'{voice}:{text}'.encode()).hexdigest()[:12]}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, timeout=60, capture_output=True)
    raw, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = raw.mean(axis=1)
    g = gcd(rate, SAMPLE_RATE)
    resampled = resample_poly(mono, SAMPLE_RATE // g, rate // g)
    n = round(seconds * SAMPLE_RATE)
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(resampled))] = resampled[:n]
    return np.clip(np.round(out * 32767), -32768, 32767).astype(np.int16)


def wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def distinct_clips(base: np.ndarray, count: int) -> list[bytes]:
    """`count` WAVs of the same speech at slightly different gains: distinct sha256, same size.

    Distinct bytes is what makes a clip a separate cache entry; the gain steps are large
    enough that no two clips quantise to the same int16 samples (checked).
    """
    clips = [
        wav_bytes((base.astype(np.float32) * (1.0 - 0.002 * (i + 1))).round().astype(np.int16)) for i in range(count)
    ]
    if len(set(clips)) != count:
        raise RuntimeError("distinct_clips produced duplicate audio")
    return clips


# ---------------------------------------------------------------------------------------------
# Server child processes (Embedder and floor), controlled over a Pipe
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerSpec:
    kind: str  # "embedder" or "floor"
    redis_url: str
    threads: int = 2
    floor_response_bytes: int = 0


async def _start_embedder(spec: ServerSpec) -> tuple[int, dict[str, Any], Callable[[], Awaitable[None]]]:
    """The real service, wired exactly as `python -m services.embedder.server` wires it."""
    import torch

    from services.embedder import server
    from services.embedder import settings as settings_mod

    argv = ["--port", "0", "--metrics-port", "0", "--threads", str(spec.threads), "--redis-url", spec.redis_url]
    settings = settings_mod.parse(argv)
    running = await server.start(settings)
    info = {
        "argv": argv,
        "settings": {
            k: "<redacted>" if k == "redis_password" and v else str(v) if isinstance(v, Path) else v
            for k, v in asdict(settings).items()
        },
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }
    return running.port, info, running.stop


async def _start_floor(spec: ServerSpec) -> tuple[int, dict[str, Any], Callable[[], Awaitable[None]]]:
    """The floor: gRPC + one Redis GET + a response of the real size, and nothing else.

    Same server options as services/common/grpc_server.py and the same Redis client
    options as services/embedder/cache/redis_store.py, so only the Embedder's own work
    separates the two.
    """
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from services.common.grpc_server import KEEPALIVE_OPTIONS

    redis = Redis.from_url(
        spec.redis_url,
        socket_timeout=0.25,
        socket_connect_timeout=0.25,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        max_connections=64,
    )
    if await redis.get(FLOOR_VALUE_KEY) is None:
        raise RuntimeError(f"floor value {FLOOR_VALUE_KEY} is missing from Redis")
    response = os.urandom(spec.floor_response_bytes)

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await redis.get(FLOOR_VALUE_KEY)
        return response

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 17 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
            *KEEPALIVE_OPTIONS,
        ]
    )
    handler = grpc.method_handlers_generic_handler(FLOOR_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    async def stop() -> None:
        await server.stop(1.0)
        await redis.aclose()

    return port, {"response_bytes": spec.floor_response_bytes}, stop


async def _serve_child(spec: ServerSpec, conn: Connection) -> None:
    starter = _start_embedder if spec.kind == "embedder" else _start_floor
    port, info, stop = await starter(spec)
    conn.send({"port": port, "pid": os.getpid(), **info})
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def on_command() -> None:
        """Answer the parent without a thread: the fd is watched by the server's own loop."""
        try:
            command = conn.recv()
        except EOFError:  # parent gone
            done.set()
            return
        if command == "cpu":
            conn.send(time.process_time())
        else:
            done.set()

    loop.add_reader(conn.fileno(), on_command)
    await done.wait()
    loop.remove_reader(conn.fileno())
    await stop()


def server_child_main(spec: ServerSpec, conn: Connection) -> None:
    """Entry point of a server child process."""
    logging.basicConfig(level=logging.WARNING, format=f"[{spec.kind}] %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve_child(spec, conn))
    finally:
        conn.close()


class ServerProcess:
    """A server in its own spawned process; the parent only talks to it over a Pipe."""

    def __init__(self, ctx: mp.context.SpawnContext, spec: ServerSpec, start_timeout_s: float = 120.0) -> None:
        self.spec = spec
        self._conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=server_child_main, args=(spec, child_conn), name=f"bench-{spec.kind}")
        self.process.daemon = True  # dies with the parent, whatever happens
        self.process.start()
        child_conn.close()
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise TimeoutError(f"{spec.kind} server did not start within {start_timeout_s:.0f}s")
        try:
            self.info: dict[str, Any] = self._conn.recv()
        except EOFError:
            self.close()
            raise RuntimeError(f"{spec.kind} server process exited during start (see its log above)") from None
        self.port = int(self.info["port"])
        self.target = f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time (all threads) the server process has used so far."""
        self._conn.send("cpu")
        if not self._conn.poll(10):
            raise TimeoutError(f"{self.spec.kind} server did not answer a cpu query")
        return float(self._conn.recv())

    def close(self, timeout_s: float = 15.0) -> None:
        if self.process.is_alive():
            try:
                self._conn.send("stop")
            except (BrokenPipeError, OSError):
                pass
            self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        self._conn.close()


# ---------------------------------------------------------------------------------------------
# Load generation (runs in its own spawned process)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadSpec:
    name: str
    target: str
    method: str
    request: bytes
    concurrency: int
    channels: int
    warmup_s: float
    duration_s: float
    timeout_s: float = 10.0


@dataclass
class LoadResult:
    """Raw outcome of one load round; the parent aggregates rounds."""

    completed_in_window: int
    completed_total: int
    errors: int
    latencies_s: list[float]
    client_cpu_s: float
    error_sample: str = ""


def run_load(spec: LoadSpec) -> LoadResult:
    """Closed-loop load: `concurrency` workers, each one request at a time, for a fixed window.

    Throughput counts completions inside [warm-up end, warm-up end + duration]; the
    same harness drives the floor and the Embedder.
    """
    return asyncio.run(_load(spec))


async def _load(spec: LoadSpec) -> LoadResult:
    channels = [grpc.aio.insecure_channel(spec.target, options=CHANNEL_OPTIONS) for _ in range(spec.channels)]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), 10)
        calls = [channel.unary_unary(spec.method) for channel in channels]
        latencies: list[float] = []
        counts = {"in_window": 0, "total": 0, "errors": 0}
        errors: list[str] = []
        cpu0, start = time.process_time(), time.perf_counter()
        window_start = start + spec.warmup_s
        window_end = window_start + spec.duration_s

        async def worker(index: int) -> None:
            call = calls[index % len(calls)]
            while (t0 := time.perf_counter()) < window_end:
                try:
                    await call(spec.request, timeout=spec.timeout_s)
                except grpc.aio.AioRpcError as exc:
                    counts["errors"] += 1
                    if not errors:
                        errors.append(f"{exc.code().name}: {exc.details()}")
                    continue
                t1 = time.perf_counter()
                counts["total"] += 1
                if window_start <= t1 <= window_end:
                    counts["in_window"] += 1
                    if t0 >= window_start:
                        latencies.append(t1 - t0)

        await asyncio.gather(*(worker(i) for i in range(spec.concurrency)))
        return LoadResult(
            completed_in_window=counts["in_window"],
            completed_total=counts["total"],
            errors=counts["errors"],
            latencies_s=latencies,
            client_cpu_s=time.process_time() - cpu0,
            error_sample=errors[0] if errors else "",
        )
    finally:
        for channel in channels:
            await channel.close()


def _noop() -> int:
    return os.getpid()


# ---------------------------------------------------------------------------------------------
# The benchmark proper (parent process: orchestration and sequential-latency client)
# ---------------------------------------------------------------------------------------------
@dataclass
class Series:
    """One sequential-latency series: a raw-bytes call, its request, and what the response must say.

    `expect` lists the acceptable EmbedResponse sources; empty means a floor call whose
    response is not parsed. For Embedder series the server's own timings are kept too,
    which separates model time from transport and queueing.
    """

    name: str
    call: grpc.aio.UnaryUnaryMultiCallable
    request: bytes
    expect: tuple[int, ...] = ()
    samples: list[float] = field(default_factory=list)
    server_total_ms: list[float] = field(default_factory=list)
    server_extract_ms: list[float] = field(default_factory=list)

    def summary(self, keep_samples: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = summarize(self.samples)
        if self.server_total_ms:
            out["server_total_p50_ms"] = round(float(np.median(self.server_total_ms)), 4)
            out["server_extract_p50_ms"] = round(float(np.median(self.server_extract_ms)), 4)
        if keep_samples:
            out["samples_ms"] = [round(x * 1000, 2) for x in self.samples]
        return out


async def timed_call(series: Series, timeout_s: float, record: bool = True) -> None:
    """One request; only the RPC itself is timed, parsing and checking run afterwards."""
    t0 = time.perf_counter()
    raw = await series.call(series.request, timeout=timeout_s)
    elapsed = time.perf_counter() - t0
    if series.expect:
        response = pb.EmbedResponse.FromString(raw)
        if response.source not in series.expect:
            raise AssertionError(f"{series.name}: unexpected source {pb.CacheSource.Name(response.source)}")
        if record:
            series.server_total_ms.append(response.timings.total_ms)
            series.server_extract_ms.append(response.timings.extract_ms)
    if record:
        series.samples.append(elapsed)


async def interleaved(series: Sequence[Series], samples: int, warmup: int, block: int, timeout_s: float) -> None:
    """Warm every series up, then sample them in alternating blocks so drift affects all alike."""
    for s in series:
        for _ in range(warmup):
            await timed_call(s, timeout_s, record=False)
    for start in range(0, samples, block):
        for s in series:
            for _ in range(min(block, samples - start)):
                await timed_call(s, timeout_s)


async def run_concurrently(
    call: grpc.aio.UnaryUnaryMultiCallable, requests: Sequence[bytes], concurrency: int, timeout_s: float
) -> tuple[list[float], list[int], float]:
    """Send `requests` in order from `concurrency` workers; per-request latency, response source, wall time."""
    latencies: list[float] = []
    sources: list[int] = []
    pending = iter(requests)

    async def worker() -> None:
        for request in pending:  # a shared iterator: each request is taken by exactly one worker
            t0 = time.perf_counter()
            raw = await call(request, timeout=timeout_s)
            latencies.append(time.perf_counter() - t0)
            sources.append(pb.EmbedResponse.FromString(raw).source)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, sources, time.perf_counter() - started


class Bench:
    def __init__(self, config: BenchConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.ctx = mp.get_context("spawn")
        self.results: dict[str, Any] = {}
        self.phase_s: dict[str, float] = {}
        self._series: dict[str, list[float]] = {}

    # -- helpers ----------------------------------------------------------------------------
    def _phase(self, name: str, started: float) -> None:
        self.phase_s[name] = round(time.perf_counter() - started, 2)
        log.info("phase %-10s done in %5.1fs", name, self.phase_s[name])

    async def _throughput(
        self, pool: ProcessPoolExecutor, plan: Sequence[tuple[str, ServerProcess, str, bytes]]
    ) -> dict[str, dict[str, Any]]:
        """Closed-loop load for every series in `plan`, in interleaved rounds, from the client process.

        Rounds alternate between the series so a burst of noise on this shared machine
        lands on all of them rather than deciding one comparison. Server CPU is read
        from the server process around each round and divided by the requests it served.
        """
        c = self.config
        loop = asyncio.get_running_loop()
        rounds: dict[str, list[tuple[LoadResult, float]]] = {name: [] for name, *_ in plan}
        for _ in range(c.load_rounds):
            for name, server, method, request in plan:
                spec = LoadSpec(
                    name, server.target, method, request, c.concurrency, c.channels, c.load_warmup_s, c.load_duration_s
                )
                cpu0 = server.cpu_seconds()
                result: LoadResult = await loop.run_in_executor(pool, run_load, spec)
                rounds[name].append((result, server.cpu_seconds() - cpu0))
                if result.errors:
                    log.warning("load %s: %d errors, e.g. %s", name, result.errors, result.error_sample)
        out: dict[str, dict[str, Any]] = {}
        for name, results in rounds.items():
            total = max(sum(r.completed_total for r, _ in results), 1)
            window = c.load_duration_s * len(results)
            out[name] = {
                "rps": round(sum(r.completed_in_window for r, _ in results) / window, 1),
                "rps_per_round": [round(r.completed_in_window / c.load_duration_s, 1) for r, _ in results],
                "latency": summarize([x for r, _ in results for x in r.latencies_s]),
                "errors": sum(r.errors for r, _ in results),
                "completed": total,
                "server_cpu_us_per_request": round(sum(cpu for _, cpu in results) / total * 1e6, 1),
                "client_cpu_us_per_request": round(sum(r.client_cpu_s for r, _ in results) / total * 1e6, 1),
            }
            log.info("load %-18s %8.0f req/s  rounds %s", name, out[name]["rps"], out[name]["rps_per_round"])
        return out

    # -- phases -----------------------------------------------------------------------------
    async def run(self, redis_url: str) -> dict[str, Any]:
        from redis.asyncio import Redis

        c = self.config
        started = time.perf_counter()
        load_before = os.getloadavg()
        rng = np.random.default_rng(c.seed)
        redis = Redis.from_url(redis_url)
        await redis.set(FLOOR_VALUE_KEY, rng.bytes(FLOOR_VALUE_BYTES))

        t = time.perf_counter()
        base = synthesize(SENTENCES[0], c.clip_s, self.workdir)
        seed_base = synthesize(SENTENCES[1], c.clip_s, self.workdir, voice="en-gb")
        memory_base = synthesize(SENTENCES[2], c.memory_clip_s, self.workdir)
        clip = wav_bytes(base)
        self._phase("audio", t)

        t = time.perf_counter()
        embedder = ServerProcess(self.ctx, ServerSpec("embedder", redis_url, threads=c.threads))
        floor: ServerProcess | None = None
        pool = ProcessPoolExecutor(max_workers=1, mp_context=self.ctx)
        channel = grpc.aio.insecure_channel(embedder.target, options=CHANNEL_OPTIONS)
        try:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            embed = channel.unary_unary(EMBED_METHOD)
            await stub.RegisterVoice(
                pb.RegisterVoiceRequest(voice_id=VOICE_ID, audio=clip, overwrite=True), timeout=c.rpc_timeout_s
            )
            upload_request = pb.EmbedRequest(audio=clip).SerializeToString()
            voice_request = pb.EmbedRequest(voice_id=VOICE_ID).SerializeToString()
            bypass = pb.CacheOptions(bypass=True)
            upload_miss_request = pb.EmbedRequest(audio=clip, cache=bypass).SerializeToString()
            voice_miss_request = pb.EmbedRequest(voice_id=VOICE_ID, cache=bypass).SerializeToString()
            hit_response = await embed(upload_request, timeout=c.rpc_timeout_s)
            voice_response = await embed(voice_request, timeout=c.rpc_timeout_s)
            sizes = {
                "clip_bytes": len(clip),
                "upload_request_bytes": len(upload_request),
                "voice_request_bytes": len(voice_request),
                "upload_hit_response_bytes": len(hit_response),
                "voice_hit_response_bytes": len(voice_response),
                "floor_redis_value_bytes": FLOOR_VALUE_BYTES,
            }
            floor = ServerProcess(
                self.ctx,
                ServerSpec("floor", redis_url, floor_response_bytes=max(len(hit_response), len(voice_response))),
            )
            await asyncio.get_running_loop().run_in_executor(pool, _noop)  # spawn the client process now
            self._phase("startup", t)

            # 1 + 2. Sequential latency: misses, then hits interleaved with the floor.
            t = time.perf_counter()
            computed = (pb.CACHE_SOURCE_COMPUTED,)
            misses = [
                Series("miss_upload", embed, upload_miss_request, computed),
                Series("miss_voice_id", embed, voice_miss_request, computed),
            ]
            await interleaved(misses, c.miss_samples, c.miss_warmup, 1, c.rpc_timeout_s)
            self._phase("misses", t)

            t = time.perf_counter()
            floor_channel = grpc.aio.insecure_channel(floor.target, options=CHANNEL_OPTIONS)
            echo = floor_channel.unary_unary(FLOOR_METHOD)
            local = (pb.CACHE_SOURCE_LOCAL,)
            hits = [
                Series("floor_voice_size", echo, rng.bytes(len(voice_request))),
                Series("hit_voice_id", embed, voice_request, local),
                Series("floor_upload_size", echo, rng.bytes(len(upload_request))),
                Series("hit_upload", embed, upload_request, local),
            ]
            await interleaved(hits, c.hit_samples, c.hit_warmup, c.hit_block, c.rpc_timeout_s)
            await floor_channel.close()
            latency = {s.name: s.summary() for s in hits} | {s.name: s.summary(keep_samples=True) for s in misses}
            self._series = {s.name: s.samples for s in (*hits, *misses)}
            self._phase("hits", t)

            # 3. Throughput at `concurrency` clients, from the separate client process.
            t = time.perf_counter()
            stats0 = await stub.GetStats(pb.GetStatsRequest(), timeout=10)
            throughput: dict[str, Any] = await self._throughput(
                pool,
                [
                    ("floor_voice_size", floor, FLOOR_METHOD, hits[0].request),
                    ("hit_voice_id", embedder, EMBED_METHOD, voice_request),
                    ("floor_upload_size", floor, FLOOR_METHOD, hits[2].request),
                    ("hit_upload", embedder, EMBED_METHOD, upload_request),
                ],
            )
            stats1 = await stub.GetStats(pb.GetStatsRequest(), timeout=10)
            if stats1.misses != stats0.misses or stats1.errors != stats0.errors:
                raise RuntimeError(
                    f"hits-only load saw {stats1.misses - stats0.misses} misses, {stats1.errors - stats0.errors} errors"
                )
            self._phase("throughput", t)

            # 4. The seed's workload: 80% one voice, 20% unique clips; with and without the cache.
            t = time.perf_counter()
            seed = await self._seed_workload(embed, seed_base, rng)
            self._phase("seed", t)

            # 5. Redis memory per conditioning entry.
            t = time.perf_counter()
            memory = await self._memory(stub, redis, memory_base)
            self._phase("memory", t)

            final_stats = await stub.GetStats(pb.GetStatsRequest(), timeout=10)
            redis_info = await redis.info("server")
        finally:
            await channel.close()
            await redis.aclose()
            pool.shutdown(wait=True, cancel_futures=True)
            if floor is not None:
                floor.close()
            embedder.close()

        self.results = {
            "sizes": sizes,
            "latency_ms": latency,
            "throughput": throughput,
            "seed_workload": seed,
            "redis_memory": memory,
            "embedder_stats": {
                "requests": final_stats.requests,
                "hits": final_stats.hits,
                "misses": final_stats.misses,
                "extractions": final_stats.extractions,
                "errors": final_stats.errors,
                "redis_errors": final_stats.redis_errors,
                "extraction_p50_ms": round(final_stats.extraction_latency.p50_ms, 2),
                "extraction_p95_ms": round(final_stats.extraction_latency.p95_ms, 2),
            },
            "targets": self._targets(latency, throughput),
            "machine": {
                **self._machine(embedder.info, str(redis_info.get("redis_version", "?"))),
                # Other work on the machine skews everything. The bench alone drives the 1-min
                # load average to ~2 on 2 cores; a "before" well above 0 means something else ran.
                "loadavg_1m_before": round(load_before[0], 2),
                "loadavg_1m_after": round(os.getloadavg()[0], 2),
            },
            "config": asdict(c),
            "phase_seconds": {**self.phase_s, "total": round(time.perf_counter() - started, 2)},
        }
        return self.results

    async def _seed_workload(
        self, embed: grpc.aio.UnaryUnaryMultiCallable, base: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Any]:
        """80% of requests reuse one clip, 20% are clips never seen before, at small concurrency.

        The same request list runs twice: with the cache (default options) and without
        it (bypass on every request, so the model runs every time). The reused clip is
        not pre-warmed: its first request is a genuine miss, as in production.
        """
        c = self.config
        unique_count = round(c.seed_requests * (1 - c.seed_reuse))
        clips = distinct_clips(base, unique_count + 1)
        reused, unique = clips[0], clips[1:]
        order = np.array([True] * (c.seed_requests - unique_count) + [False] * unique_count)
        rng.shuffle(order)
        unique_iter = iter(unique)
        audio_list = [reused if is_reused else next(unique_iter) for is_reused in order]
        out: dict[str, Any] = {
            "requests": c.seed_requests,
            "concurrency": c.seed_concurrency,
            "reuse_fraction": c.seed_reuse,
            "unique_clips": unique_count,
        }
        for mode, options in (("with_cache", pb.CacheOptions()), ("without_cache", pb.CacheOptions(bypass=True))):
            requests = [pb.EmbedRequest(audio=a, cache=options).SerializeToString() for a in audio_list]
            latencies, sources, wall = await run_concurrently(embed, requests, c.seed_concurrency, c.rpc_timeout_s)
            computed = sum(s == pb.CACHE_SOURCE_COMPUTED for s in sources)
            split = {
                kind: summarize(
                    [x for x, s in zip(latencies, sources, strict=True) if is_miss == (s == pb.CACHE_SOURCE_COMPUTED)]
                )
                for kind, is_miss in (("hits", False), ("misses", True))
            }
            out[mode] = {
                **summarize(latencies),
                # Hits and misses apart: a hit waiting behind a forward pass for CPU shows up here.
                "by_outcome": split,
                "wall_s": round(wall, 2),
                "requests_per_s": round(len(requests) / wall, 2),
                "computed": computed,
                "hit_ratio": round(1 - computed / len(sources), 3),
            }
            self._series[f"seed_{mode}"] = latencies
            log.info("seed %-14s p50 %7.1f ms  p95 %7.1f ms", mode, out[mode]["p50_ms"], out[mode]["p95_ms"])
        out["p50_speedup"] = ratio(out["without_cache"]["p50_ms"], out["with_cache"]["p50_ms"])
        out["p95_speedup"] = ratio(out["without_cache"]["p95_ms"], out["with_cache"]["p95_ms"])
        return out

    async def _memory(self, stub: embedder_pb2_grpc.EmbedderStub, redis: Any, base: np.ndarray) -> dict[str, Any]:
        """Store N distinct entries through the real service (Preload), then ask Redis what they cost.

        Short clips: the conditioning is 192 floats whatever the clip length, so this
        only saves model time. The delta is taken around the Preload alone.
        """
        c = self.config
        n = c.memory_entries
        clips = distinct_clips(base, n)
        pattern = "*:cond:ecapa:*"
        before_keys = {k async for k in redis.scan_iter(match=pattern, count=1000)}
        stats0 = await redis.memory_stats()
        used0 = int((await redis.info("memory"))["used_memory"])

        async def stream() -> AsyncIterator[pb.PreloadRequest]:
            for i, audio in enumerate(clips):
                yield pb.PreloadRequest(audio=audio, label=f"mem-{i}")

        summary = await stub.Preload(stream(), timeout=max(c.rpc_timeout_s, n * 2.0))
        used1 = int((await redis.info("memory"))["used_memory"])
        stats1 = await redis.memory_stats()
        new_keys = sorted({k async for k in redis.scan_iter(match=pattern, count=1000)} - before_keys)
        if summary.failed or len(new_keys) != n:
            raise RuntimeError(
                f"memory phase: preload computed={summary.computed} failed={summary.failed} new={len(new_keys)}"
            )
        usages = [int(await redis.memory_usage(k, samples=0)) for k in new_keys]
        value_bytes = await redis.strlen(new_keys[0])
        voice_audio_keys = [k async for k in redis.scan_iter(match="*:audio:*", count=1000)]
        voice_audio_usage = int(await redis.memory_usage(voice_audio_keys[0], samples=0)) if voice_audio_keys else None
        return {
            "entries": n,
            "example_key": new_keys[0].decode(),
            "value_bytes": int(value_bytes),
            "memory_usage_one_key_bytes": usages[0],
            "memory_usage_mean_bytes": round(float(np.mean(usages)), 1),
            "used_memory_delta_per_entry_bytes": round((used1 - used0) / n, 1),
            # Breakdown of that delta (MEMORY STATS): key/value objects, the main and expires
            # hash tables, and client buffers (noise: the Embedder's connections, not data).
            "dataset_delta_per_entry_bytes": round(_stat_delta(stats0, stats1, "dataset.bytes") / n, 1),
            "hashtables_delta_per_entry_bytes": round((_db_overhead(stats1) - _db_overhead(stats0)) / n, 1),
            "client_buffers_delta_bytes": _stat_delta(stats0, stats1, "clients.normal"),
            "registered_voice_audio_key_bytes": voice_audio_usage,
            "preload_ms": round(summary.total_ms, 1),
        }

    # -- verdicts ---------------------------------------------------------------------------
    @staticmethod
    def _targets(latency: dict[str, dict[str, float]], throughput: dict[str, Any]) -> dict[str, Any]:
        p50 = {name: s["p50_ms"] for name, s in latency.items()}
        rps = {name: r["rps"] for name, r in throughput.items()}

        def target(value: float, op: str, limit: float, what: str) -> dict[str, Any]:
            ok = value <= limit if op == "<=" else value >= limit
            return {"value": value, "target": f"{op} {limit:g}", "pass": bool(ok), "what": what}

        return {
            "voice_hit_vs_floor_p50": target(
                ratio(p50["hit_voice_id"], p50["floor_voice_size"]), "<=", 1.2, "voice_id hit p50 / floor p50"
            ),
            "upload_hit_vs_floor_p50": {
                **target(ratio(p50["hit_upload"], p50["floor_upload_size"]), "<=", 1.2, "upload hit p50 / floor p50"),
                "informational": True,
            },
            "upload_miss_over_hit_p50": target(
                ratio(p50["miss_upload"], p50["hit_upload"]), ">=", 150, "upload miss p50 / hit p50"
            ),
            "voice_miss_over_hit_p50": target(
                ratio(p50["miss_voice_id"], p50["hit_voice_id"]), ">=", 150, "voice_id miss p50 / hit p50"
            ),
            "voice_hits_vs_floor_rps": target(
                ratio(rps["hit_voice_id"], rps["floor_voice_size"]), ">=", 0.8, "voice_id hits/s / floor req/s"
            ),
            "upload_hits_vs_floor_rps": target(
                ratio(rps["hit_upload"], rps["floor_upload_size"]), ">=", 0.8, "upload hits/s / floor req/s"
            ),
        }

    @staticmethod
    def _machine(embedder_info: dict[str, Any], redis_version: str) -> dict[str, Any]:
        import redis as redis_py

        return {
            "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "cpu_model": _cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "redis_py": redis_py.__version__,
            "redis_server": redis_version,
            "numpy": np.__version__,
            "torch": embedder_info.get("torch_version"),
            "torch_threads": embedder_info.get("torch_threads"),
            "torch_interop_threads": embedder_info.get("torch_interop_threads"),
            "embedder_argv": embedder_info.get("argv"),
            "embedder_settings": embedder_info.get("settings"),
        }

    # -- output -----------------------------------------------------------------------------
    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, png_path = out_dir / "embedder.json", out_dir / "embedder.png"
        tmp = json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.results, indent=2, sort_keys=False) + "\n")
        tmp.replace(json_path)
        plot(self.results, self._series, png_path)
        return json_path, png_path


def _stat_delta(before: dict[str, Any], after: dict[str, Any], name: str) -> int:
    return int(after.get(name, 0)) - int(before.get(name, 0))


def _db_overhead(stats: dict[str, Any]) -> int:
    db = stats.get("db.0") or {}
    return int(db.get("overhead.hashtable.main", 0)) + int(db.get("overhead.hashtable.expires", 0))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ---------------------------------------------------------------------------------------------
# Plot and table
# ---------------------------------------------------------------------------------------------
def plot(results: dict[str, Any], series: dict[str, list[float]], path: Path) -> None:
    """Four panels: latency percentiles, hit-vs-floor CDF, throughput, seed workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency, throughput, seed = results["latency_ms"], results["throughput"], results["seed_workload"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle(
        f"voxcache Embedder — {results['machine']['cpu_count']} CPUs, "
        f"torch threads {results['machine']['torch_threads']}, python {results['machine']['python']}"
    )

    ax = axes[0][0]
    names = ["floor_voice_size", "hit_voice_id", "floor_upload_size", "hit_upload", "miss_voice_id", "miss_upload"]
    x = np.arange(len(names))
    for i, q in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        ax.bar(x + (i - 1) * 0.27, [latency[n][q] for n in names], 0.27, label=q.split("_")[0])
    ax.set_yscale("log")
    ax.set_xticks(x, [n.replace("_", "\n", 1) for n in names], fontsize=8)
    ax.set_ylabel("ms (log)")
    ax.set_title("Sequential latency over gRPC")
    ax.legend()

    ax = axes[0][1]
    for name in ("floor_voice_size", "hit_voice_id", "floor_upload_size", "hit_upload"):
        data = np.sort(np.asarray(series.get(name, []))) * 1000
        if data.size:
            ax.plot(data, np.arange(1, data.size + 1) / data.size, label=name)
    ax.set_xlabel("ms")
    ax.set_ylabel("fraction of requests")
    ax.set_title("Hit vs floor latency CDF")
    ax.set_xlim(
        left=0, right=max(latency[n]["p99_ms"] for n in ("floor_upload_size", "hit_upload", "hit_voice_id")) * 1.5
    )
    ax.legend(fontsize=8)

    ax = axes[1][0]
    pairs = [("voice_id", "floor_voice_size", "hit_voice_id"), ("upload", "floor_upload_size", "hit_upload")]
    x = np.arange(len(pairs))
    floor_rps = [throughput[f]["rps"] for _, f, _ in pairs]
    hit_rps = [throughput[h]["rps"] for _, _, h in pairs]
    ax.bar(x - 0.2, floor_rps, 0.4, label="floor req/s")
    ax.bar(x + 0.2, hit_rps, 0.4, label="Embedder hits/s")
    for xi, f in zip(x, floor_rps, strict=True):
        ax.hlines(0.8 * f, xi - 0.4, xi + 0.4, colors="red", linestyles="dashed")
    ax.set_xticks(x, [p[0] for p in pairs])
    conc = results["config"]["concurrency"]
    ax.set_title(f"Throughput at {conc} concurrent clients (dashed: 0.8x floor; dots: rounds)")
    for xi, name in zip(
        (x[0] - 0.2, x[0] + 0.2, x[1] - 0.2, x[1] + 0.2),
        ("floor_voice_size", "hit_voice_id", "floor_upload_size", "hit_upload"),
        strict=True,
    ):
        per_round = throughput[name]["rps_per_round"]
        ax.plot([xi] * len(per_round), per_round, "k.", markersize=4)
    ax.legend()

    ax = axes[1][1]
    modes = ("with_cache", "without_cache")
    x = np.arange(2)
    for offset, q in ((-0.2, "p50_ms"), (0.2, "p95_ms")):
        bars = ax.bar(x + offset, [seed[m][q] for m in modes], 0.4, label=q.split("_")[0])
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(x, [m.replace("_", " ") for m in modes])
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.set_title(
        f"Seed workload: {seed['reuse_fraction']:.0%} reuse, {seed['requests']} requests, "
        f"concurrency {seed['concurrency']}"
    )
    ax.legend()

    fig.tight_layout()
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)


def table(results: dict[str, Any]) -> str:
    """A compact, human-readable summary of everything in the JSON that matters."""
    m, s, lat, thr = results["machine"], results["sizes"], results["latency_ms"], results["throughput"]
    seed, mem, tg = results["seed_workload"], results["redis_memory"], results["targets"]
    lines = [
        f"voxcache Embedder benchmark - {m['cpu_count']} CPUs ({m['cpu_model']}), python {m['python']}, "
        f"torch {m['torch']} threads {m['torch_threads']}, grpcio {m['grpcio']}, redis {m['redis_server']}",
        f"payloads: upload request {s['upload_request_bytes']:,} B, voice_id request {s['voice_request_bytes']} B, "
        f"hit response {s['upload_hit_response_bytes']} B, floor Redis value {s['floor_redis_value_bytes']} B",
        "",
        f"{'sequential latency (ms)':<32}{'n':>6}{'p50':>10}{'p95':>10}{'p99':>10}",
    ]
    for name in ("floor_voice_size", "hit_voice_id", "floor_upload_size", "hit_upload", "miss_voice_id", "miss_upload"):
        r = lat[name]
        lines.append(f"  {name:<30}{r['n']:>6}{r['p50_ms']:>10.3f}{r['p95_ms']:>10.3f}{r['p99_ms']:>10.3f}")
    cfg = results["config"]
    heading = f"throughput ({cfg['concurrency']} clients, {cfg['load_rounds']}x{cfg['load_duration_s']:g}s)"
    lines += [
        "",
        f"{heading:<32}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'srv us/req':>12}{'cli us/req':>12}",
    ]
    for name in ("floor_voice_size", "hit_voice_id", "floor_upload_size", "hit_upload"):
        r = thr[name]
        lines.append(
            f"  {name:<30}{r['rps']:>9.0f}{r['latency'].get('p50_ms', 0):>9.2f}{r['latency'].get('p99_ms', 0):>9.2f}"
            f"{r['server_cpu_us_per_request']:>12.0f}{r['client_cpu_us_per_request']:>12.0f}"
        )
    lines += [
        "",
        f"seed workload ({seed['reuse_fraction']:.0%} one voice, {seed['requests']} requests, "
        f"concurrency {seed['concurrency']})",
        f"  {'':<16}{'p50 ms':>10}{'p95 ms':>10}{'wall s':>9}{'hit ratio':>11}",
    ]
    for mode in ("with_cache", "without_cache"):
        r = seed[mode]
        lines.append(f"  {mode:<16}{r['p50_ms']:>10.2f}{r['p95_ms']:>10.2f}{r['wall_s']:>9.2f}{r['hit_ratio']:>11.2f}")
        if mode == "with_cache":
            for kind, part in r["by_outcome"].items():
                if part.get("n"):
                    lines.append(f"    {kind:<14}{part['p50_ms']:>10.2f}{part['p95_ms']:>10.2f}   (n={part['n']})")
    lines += [
        f"  speed-up with the cache: p50 {seed['p50_speedup']:.1f}x, p95 {seed['p95_speedup']:.1f}x",
        "",
        f"redis memory ({mem['entries']} entries): value {mem['value_bytes']} B, MEMORY USAGE of one key "
        f"{mem['memory_usage_one_key_bytes']} B (mean {mem['memory_usage_mean_bytes']:.0f} B), "
        f"used_memory delta/N {mem['used_memory_delta_per_entry_bytes']:.0f} B",
        f"  delta/N breakdown: objects {mem['dataset_delta_per_entry_bytes']:.0f} B + hash tables "
        f"{mem['hashtables_delta_per_entry_bytes']:.0f} B; client buffers changed by "
        f"{mem['client_buffers_delta_bytes']:,} B in total",
        f"  (a registered voice also keeps its reference audio: {mem['registered_voice_audio_key_bytes']} B)",
        "",
        "targets",
    ]
    for t in tg.values():
        verdict = "info" if t.get("informational") else ("PASS" if t["pass"] else "FAIL")
        lines.append(f"  {t['what']:<34}{t['value']:>10.2f}  {t['target']:<8}  {verdict}")
    lines.append(f"\ntotal {results['phase_seconds']['total']:.0f}s  phases: {results['phase_seconds']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> tuple[BenchConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench.embedder_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: checks the harness, not the numbers")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where embedder.json/png go")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when any target is missed")
    defaults = BenchConfig()
    tunable = {
        "hit_samples": int,
        "miss_samples": int,
        "concurrency": int,
        "channels": int,
        "load_rounds": int,
        "load_duration_s": float,
        "seed_requests": int,
        "memory_entries": int,
        "threads": int,
    }
    for name, kind in tunable.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=kind, default=None, help=f"default {getattr(defaults, name)}")
    args = parser.parse_args(argv)
    config = BenchConfig.quick() if args.quick else defaults
    overrides = {name: getattr(args, name) for name in tunable if getattr(args, name) is not None}
    return BenchConfig(**{**asdict(config), **overrides}), args


def main(argv: Sequence[str] | None = None) -> int:
    from services.common.redis_server import LocalRedis

    config, args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    with tempfile.TemporaryDirectory(prefix="voxcache-bench-") as tmp, LocalRedis() as redis:
        log.info(
            "private redis-server on %s; config %s", redis.url, "quick" if config == BenchConfig.quick() else "full"
        )
        bench = Bench(config, Path(tmp))
        results = asyncio.run(bench.run(redis.url))
    json_path, png_path = bench.write(args.out_dir)
    print()
    print(table(results))
    print(f"\nwrote {json_path.relative_to(REPO_ROOT) if json_path.is_relative_to(REPO_ROOT) else json_path}")
    print(f"wrote {png_path.relative_to(REPO_ROOT) if png_path.is_relative_to(REPO_ROOT) else png_path}")
    missed = [name for name, t in results["targets"].items() if not t["pass"] and not t.get("informational")]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
