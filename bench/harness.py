"""Measurement machinery: server child processes, load generation, timed series, statistics.

Why it is built this way:

* Servers and clients live in separate processes (multiprocessing 'spawn'): a client
  sharing the server's event loop would steal its CPU and hide queueing. The Embedder
  and the floor each run in their own child process, started the same way, with the
  same gRPC server options, so neither gets a structural advantage.
* Clients send pre-serialised request bytes and receive raw response bytes for both
  servers (identity serialisers), so the client-side cost is identical and every
  difference in the numbers is server-side. Responses are parsed and checked (hit or
  computed) outside the timed region.
* Sequential latency samples and load rounds are interleaved across the series being
  compared, so slow drift (thermal, noisy neighbours) hits all series alike.
* Everything is bounded: sample counts, fixed load durations and per-RPC deadlines.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench.floor import FloorRoute, Started, start_floor
from voxcache.v1 import embedder_pb2 as pb

#: Loopback only, and every channel gets its own TCP connection (grpc otherwise shares
#: subchannels between channels with identical arguments, which would make
#: "32 clients" one connection).
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.use_local_subchannel_pool", 1),
)

log = logging.getLogger(__name__)


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
    """A rounded ratio for the results; NaN rather than a crash when a series came out empty."""
    return round(numerator / denominator, 3) if denominator else float("nan")


# ---------------------------------------------------------------------------------------------
# Server child processes (Embedder and floor), controlled over a Pipe
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerSpec:
    kind: str  # "embedder" or "floor"
    redis_url: str
    threads: int = 2
    #: The floor's methods (bench/floor.py).
    floor_routes: tuple[FloorRoute, ...] = ()
    #: More Embedder flags, e.g. `--local-cache-mb 0` for a worker whose hits all come from Redis.
    embedder_args: tuple[str, ...] = ()
    #: Trace every call (100 % sampling) into a BatchSpanProcessor that counts and drops the spans
    #: (bench/tracing_bench.py); the child then answers a "spans" command with the count.
    traced: bool = False


async def start_embedder(redis_url: str, threads: int, extra: Sequence[str] = ()) -> Started:
    """The real service, wired exactly as `python -m services.embedder.server` wires it."""
    import torch

    from services.embedder import server
    from services.embedder import settings as settings_mod

    argv = ["--port", "0", "--metrics-port", "0", "--threads", str(threads), "--redis-url", redis_url, *extra]
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


class _CountingExporter:
    """A span exporter that keeps nothing: export cost is the SDK's, not an exporter's."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


_exporter = _CountingExporter()


def _trace_everything() -> None:
    """Tracing on as an operator would run it (BatchSpanProcessor, every trace sampled)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from services.common import tracing

    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(BatchSpanProcessor(_exporter))  # type: ignore[arg-type]
    tracing.enable(provider)


def _spans_exported() -> int:
    from services.common import tracing

    provider = tracing.provider()
    if provider is not None:
        provider.force_flush()
    return _exporter.exported


async def _start(spec: ServerSpec) -> Started:
    if spec.traced:
        _trace_everything()
    if spec.kind == "embedder":
        return await start_embedder(spec.redis_url, spec.threads, spec.embedder_args)
    return await start_floor(spec.redis_url, spec.floor_routes)


async def _serve_child(spec: ServerSpec, conn: Connection) -> None:
    port, info, stop = await _start(spec)
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
        elif command == "spans":
            conn.send(_spans_exported())
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

    def spans_exported(self) -> int:
        """Spans a traced server has handed its exporter so far (0 for an untraced one)."""
        self._conn.send("spans")
        if not self._conn.poll(30):
            raise TimeoutError(f"{self.spec.kind} server did not answer a spans query")
        return int(self._conn.recv())

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
class LoadShape:
    """How hard and how long every series in one throughput comparison is driven."""

    concurrency: int
    channels: int
    warmup_s: float
    duration_s: float
    rounds: int


@dataclass(frozen=True)
class LoadSpec:
    """One round of one series, as the client process receives it (pickled)."""

    name: str
    target: str
    method: str
    request: bytes
    shape: LoadShape
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


#: One series of a throughput comparison: its name, the server, the method and the request bytes.
LoadTarget = tuple[str, ServerProcess, str, bytes]


def run_load(spec: LoadSpec) -> LoadResult:
    """Closed-loop load: `concurrency` workers, each one request at a time, for a fixed window.

    Throughput counts completions inside [warm-up end, warm-up end + duration]; the
    same harness drives the floor and the Embedder.
    """
    return asyncio.run(_load(spec))


async def _load(spec: LoadSpec) -> LoadResult:
    shape = spec.shape
    channels = [grpc.aio.insecure_channel(spec.target, options=CHANNEL_OPTIONS) for _ in range(shape.channels)]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), 10)
        calls = [channel.unary_unary(spec.method) for channel in channels]
        latencies: list[float] = []
        counts = {"in_window": 0, "total": 0, "errors": 0}
        errors: list[str] = []
        cpu0, start = time.process_time(), time.perf_counter()
        window_start = start + shape.warmup_s
        window_end = window_start + shape.duration_s

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

        await asyncio.gather(*(worker(i) for i in range(shape.concurrency)))
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


def spawn_probe() -> int:
    """A no-op job: submitting it makes the pool spawn its client process before timing starts."""
    return os.getpid()


async def measure_throughput(
    pool: ProcessPoolExecutor, plan: Sequence[LoadTarget], shape: LoadShape
) -> dict[str, dict[str, Any]]:
    """Closed-loop load for every series in `plan`, in interleaved rounds, from the client process.

    Rounds alternate between the series so a burst of noise on this shared machine
    lands on all of them rather than deciding one comparison, and every other round runs
    them in reverse order (A B, B A, ...), as `interleaved` does for latency: with an even
    number of rounds, each of two series runs first as often as the other. Server CPU is read
    from the server process around each round and divided by the requests it served.
    """
    loop = asyncio.get_running_loop()
    rounds: dict[str, list[tuple[LoadResult, float]]] = {name: [] for name, *_ in plan}
    for round_index in range(shape.rounds):
        for name, server, method, request in plan if round_index % 2 == 0 else reversed(plan):
            spec = LoadSpec(name, server.target, method, request, shape)
            cpu0 = server.cpu_seconds()
            result: LoadResult = await loop.run_in_executor(pool, run_load, spec)
            rounds[name].append((result, server.cpu_seconds() - cpu0))
            if result.errors:
                log.warning("load %s: %d errors, e.g. %s", name, result.errors, result.error_sample)
    out: dict[str, dict[str, Any]] = {}
    for name, results in rounds.items():
        out[name] = aggregate_rounds(results, shape.duration_s)
        log.info("load %-18s %8.0f req/s  rounds %s", name, out[name]["rps"], out[name]["rps_per_round"])
    return out


def aggregate_rounds(results: Sequence[tuple[LoadResult, float]], duration_s: float) -> dict[str, Any]:
    """One series' rounds (each with the server CPU seconds it cost) as the results' throughput entry.

    Requests per second count only the measured windows; CPU per request divides by
    every completed request, warm-up included, because the CPU was read around both.
    """
    total = max(sum(r.completed_total for r, _ in results), 1)
    window = duration_s * len(results)
    return {
        "rps": round(sum(r.completed_in_window for r, _ in results) / window, 1),
        "rps_per_round": [round(r.completed_in_window / duration_s, 1) for r, _ in results],
        "latency": summarize([x for r, _ in results for x in r.latencies_s]),
        "errors": sum(r.errors for r, _ in results),
        "completed": total,
        "server_cpu_us_per_request": round(sum(cpu for _, cpu in results) / total * 1e6, 1),
        "client_cpu_us_per_request": round(sum(r.client_cpu_s for r, _ in results) / total * 1e6, 1),
    }


# ---------------------------------------------------------------------------------------------
# Sequential latency (parent process)
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
        if response.tier not in series.expect:
            raise AssertionError(f"{series.name}: unexpected source {pb.CacheTier.Name(response.tier)}")
        if record:
            series.server_total_ms.append(response.timings.total_ms)
            series.server_extract_ms.append(response.timings.extract_ms)
    if record:
        series.samples.append(elapsed)


async def interleaved(series: Sequence[Series], samples: int, warmup: int, block: int, timeout_s: float) -> None:
    """Warm every series up, then sample them in alternating blocks so drift affects all alike.

    The order of the blocks is reversed every other round (A B, B A, A B, ...): which block
    comes after which matters, and an A/A run of bench/tracing_bench.py (`--control`) measured
    about 2 % of a hit's p50 in favour of the second of two identical servers. With two series,
    each follows the other and itself equally often; with more (or two kinds of request
    mixed) the positions are not balanced, and the A/A run was off by up to 5 %: compare
    several pairs with `interleaved_pairs`."""
    for s in series:
        for _ in range(warmup):
            await timed_call(s, timeout_s, record=False)
    for round_index, start in enumerate(range(0, samples, block)):
        for s in series if round_index % 2 == 0 else reversed(series):
            for _ in range(min(block, samples - start)):
                await timed_call(s, timeout_s)


async def interleaved_pairs(
    pairs: Sequence[tuple[Series, Series]], samples: int, warmup: int, block: int, timeout_s: float
) -> None:
    """Each pair (a series and the one it is compared with: a hit and its floor, tracing off and
    on) interleaved on its own (`interleaved`), one pair after the other: every ratio comes from
    two series that took each position equally often."""
    for pair in pairs:
        await interleaved(pair, samples, warmup, block, timeout_s)


async def interleaved_pair_rounds(
    pairs: Sequence[tuple[Series, Series]], rounds: int, samples: int, warmup: int, block: int, timeout_s: float
) -> list[dict[str, list[float]]]:
    """`interleaved_pairs` `rounds` times over: each round's own samples (seconds) per series, for a
    verdict from the median round; every series also keeps all rounds' samples."""
    series = [one for pair in pairs for one in pair]
    out: list[dict[str, list[float]]] = []
    for _ in range(rounds):
        marks = {one.name: len(one.samples) for one in series}
        await interleaved_pairs(pairs, samples, warmup, block, timeout_s)
        out.append({one.name: one.samples[marks[one.name] :] for one in series})
    return out


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
            sources.append(pb.EmbedResponse.FromString(raw).tier)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, sources, time.perf_counter() - started
