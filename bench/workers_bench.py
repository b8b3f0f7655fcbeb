"""Workers benchmark: 1 vs 2 Embedder workers against the echo floor, cross-worker hits, the lease's cost.

Run from the repository root:

    .venv/bin/python -m bench.workers_bench            # ~2-3 min on 2 cores
    .venv/bin/python -m bench.workers_bench --quick    # shorter windows, fewer samples

Writes bench/results/workers.json and prints the figures. In one run, on one private
redis-server:

1. hits by voice_id/s at 32 concurrent clients (closed loop, 8 connections, so SO_REUSEPORT
   can spread them) for `--workers 1` and `--workers 2`, interleaved in rounds with the bare
   gRPC echo floor (bench/floor.py) answering the same number of bytes;
2. the p50 of a cross-worker hit: a clip extracted by one worker and asked of the other,
   which answers from Redis (tier `redis`), against the floor's echo + one GET of the real
   record's size, both sequential, interleaved;
3. the extra latency the lease adds to a miss: the lease's own Redis work (SET NX PX, the
   re-check GET, PUBLISH, compare-and-delete EVALSHA) timed on its own, next to the miss's
   median extraction time.

The machine's core count and load average are recorded with the figures: on a shared
2-core machine they are noisy, and 2 workers can only beat 1 by the cores left free.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench.clips import distinct_clips, synthesize
from bench.floor import FLOOR_VALUE_KEY, FloorRoute
from bench.harness import (
    CHANNEL_OPTIONS,
    LoadShape,
    ServerProcess,
    ServerSpec,
    measure_throughput,
    ratio,
    spawn_probe,
    summarize,
)
from services.common.paths import REPO_ROOT
from services.common.redis_client import make_client
from services.common.redis_server import LocalRedis
from services.embedder.cache import keys
from services.embedder.cache.lease import Leases
from services.embedder.cache.redis_store import RedisStore
from services.embedder.workers import free_port
from voxcache.v1 import embedder_pb2 as pb

log = logging.getLogger("bench.workers")
RESULTS = REPO_ROOT / "bench" / "results" / "workers.json"
EMBED = "/voxcache.v1.Embedder/Embed"
VOICE = "bench-voice"


def process_cpu_s(pid: int) -> float:
    """utime + stime of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkerGroup:
    """`python -m services.embedder.server --workers N` as an operator runs it, on a port of its own."""

    def __init__(self, workers: int, redis_url: str, prefix: str) -> None:
        self.workers = workers
        self.port = free_port("127.0.0.1")
        self.target = f"127.0.0.1:{self.port}"
        args = [
            "--workers", str(workers), "--port", str(self.port), "--metrics-port", "0", "--redis-url", redis_url,
            "--cache-prefix", prefix, "--ecapa-runtime", "onnxruntime", "--threads", "1", "--log-level", "WARNING",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'clients/python/src'}:{REPO_ROOT}"}
        self.process = subprocess.Popen([sys.executable, "-m", "services.embedder.server", *args], env=env)

    def pids(self) -> list[int]:
        """The workers' pids (the supervisor's children), or the one process of --workers 1."""
        if self.workers == 1:
            return [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def cpu_seconds(self) -> float:
        return sum(process_cpu_s(pid) for pid in self.pids())

    async def ready(self, timeout_s: float = 240) -> None:
        """Until GetStats counts every worker (each loaded its model and published)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                async with grpc.aio.insecure_channel(self.target) as channel:
                    raw = await channel.unary_unary("/voxcache.v1.Embedder/GetStats")(
                        pb.GetStatsRequest().SerializeToString(), timeout=5
                    )
                    if pb.GetStatsResponse.FromString(raw).workers >= self.workers:
                        return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.5)
        raise TimeoutError(f"--workers {self.workers} did not come up")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def call(target: str, request: bytes, method: str = EMBED) -> tuple[bytes, float]:
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        t0 = time.perf_counter()
        raw = await channel.unary_unary(method)(request, timeout=120)
        return raw, time.perf_counter() - t0


async def cross_worker_hits(
    group: WorkerGroup, floor: ServerProcess, clips: Sequence[bytes], echo_get: str
) -> dict[str, Any]:
    """Extract each clip once through one connection, then ask again through fresh connections until a
    worker answers from Redis; interleaved with the floor's echo + GET of a request of the same size."""
    requests = [pb.EmbedRequest(audio=clip).SerializeToString() for clip in clips]
    for request in requests:
        await call(group.target, request)
    hits, floors, tiers = [], [], []
    for request in requests:
        for _ in range(6):  # a fresh connection lands on a random worker; 1 in 2 is the other one
            raw, elapsed = await call(group.target, request)
            tier = pb.EmbedResponse.FromString(raw).tier
            tiers.append(pb.CacheTier.Name(tier))
            if tier == pb.CACHE_TIER_REDIS:
                hits.append(elapsed)
                _, floor_s = await call(floor.target, request, echo_get)
                floors.append(floor_s)
                break
    return {
        "cross_worker_hit": summarize(hits),
        "echo_get": summarize(floors),
        "ratio_p50": ratio(float(np.median(hits)), float(np.median(floors))) if hits and floors else None,
        "note": "each sample uses a fresh connection (that is how a hit reaches the other worker), floor too",
    }


async def lease_cost(redis_url: str, samples: int) -> dict[str, Any]:
    """The lease's own work on a miss, uncontended: claim (SET NX PX + the re-check GET) and release
    (PUBLISH + EVALSHA compare-and-delete), as the miss path runs them."""
    store = RedisStore(redis_url)
    leases = Leases(store, keys.lease_channel("bench-lease"), owner="bench", ttl_ms=10_000, poll_s=0.25)
    claim_s, release_s = [], []
    try:
        for i in range(samples):
            key = f"bench-lease:cond:x:{i}"
            t0 = time.perf_counter()
            claim = await leases.claim(key, lambda key=key: store.get(key))
            t1 = time.perf_counter()
            assert claim.lease is not None
            await claim.lease.release()
            claim_s.append(t1 - t0)
            release_s.append(time.perf_counter() - t1)
    finally:
        await leases.close()
        await store.close()
    total = [a + b for a, b in zip(claim_s, release_s, strict=True)]
    return {"claim": summarize(claim_s[5:]), "release": summarize(release_s[5:]), "total": summarize(total[5:])}


@dataclass(frozen=True)
class Config:
    duration_s: float
    rounds: int
    clips: int
    lease_samples: int


async def run(config: Config) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    started = time.time()
    load_before = os.getloadavg()
    with LocalRedis() as redis_server:
        url = redis_server.url
        groups = {n: WorkerGroup(n, url, f"bench{n}") for n in (1, 2)}
        floor: ServerProcess | None = None
        try:
            await asyncio.gather(*(g.ready() for g in groups.values()))
            base = synthesize(
                "The quick brown fox jumps over the lazy dog near the river bank.", 3.0, Path(tempfile.mkdtemp())
            )
            clips = distinct_clips(base, config.clips + 1)
            register = pb.RegisterVoiceRequest(voice_id=VOICE, audio=clips[0]).SerializeToString()
            for group in groups.values():
                await call(group.target, register, "/voxcache.v1.Embedder/RegisterVoice")
            voice_request = pb.EmbedRequest(voice_id=VOICE).SerializeToString()
            response, _ = await call(groups[1].target, voice_request)
            first = pb.EmbedResponse.FromString(response)
            redis = make_client(url, timeout_s=1.0)
            record = await redis.get(first.conditioning.cache_key)
            await redis.set(FLOOR_VALUE_KEY, record)
            await redis.aclose()
            routes = (FloorRoute("echo", len(response), False), FloorRoute("echo_get", len(response), True))
            floor = ServerProcess(ctx, ServerSpec("floor", url, floor_routes=routes))
            shape = LoadShape(
                concurrency=32, channels=8, warmup_s=1.0, duration_s=config.duration_s, rounds=config.rounds
            )
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                pool.submit(spawn_probe).result()
                plan = [
                    ("echo", floor, routes[0].method, voice_request),
                    ("workers_1", groups[1], EMBED, voice_request),
                    ("workers_2", groups[2], EMBED, voice_request),
                ]
                throughput = await measure_throughput(pool, plan, shape)  # type: ignore[arg-type]
            cross = await cross_worker_hits(groups[2], floor, clips[1:], routes[1].method)
            lease = await lease_cost(url, config.lease_samples)
            stats_raw, _ = await call(groups[2].target, b"", "/voxcache.v1.Embedder/GetStats")
            stats = pb.GetStatsResponse.FromString(stats_raw)
        finally:
            if floor is not None:
                floor.close()
            for group in groups.values():
                group.close()
    extraction_p50 = stats.extraction_latency.p50_ms
    return {
        "started_unix": round(started),
        "machine": {"cores": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "config": config.__dict__,
        "hits_by_voice_id": {
            **throughput,
            "workers_1_vs_echo": ratio(throughput["workers_1"]["rps"], throughput["echo"]["rps"]),
            "workers_2_vs_echo": ratio(throughput["workers_2"]["rps"], throughput["echo"]["rps"]),
            "workers_2_vs_workers_1": ratio(throughput["workers_2"]["rps"], throughput["workers_1"]["rps"]),
            "target_2_vs_1": 1.7,
        },
        "cross_worker": {**cross, "target_ratio_p50": 1.2},
        "lease": {
            **lease,
            "miss_extraction_p50_ms": extraction_p50,
            "share_of_miss_p50": ratio(lease["total"].get("p50_ms", 0.0), extraction_p50) if extraction_p50 else None,
            "workers_2_stats": {"extractions": stats.extractions, "peer_fills": stats.peer_fills},
        },
        "note": "shared 2-core machine: every figure is from one run and noisy; see loadavg",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows and fewer samples")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = Config(duration_s=2.0, rounds=2, clips=20, lease_samples=100) if args.quick else Config(4.0, 3, 40, 300)
    results = asyncio.run(run(config))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    hits, cross, lease = results["hits_by_voice_id"], results["cross_worker"], results["lease"]
    print(f"machine: {results['machine']}")
    for name in ("echo", "workers_1", "workers_2"):
        print(
            f"  {name:10s} {hits[name]['rps']:8.0f} hits/s at 32 clients  p50 {hits[name]['latency'].get('p50_ms')} ms"
        )
    print(f"  2 workers / 1 worker: {hits['workers_2_vs_workers_1']}x (target >= 1.7 where 2 cores are free)")
    print(
        f"  cross-worker hit p50 {cross['cross_worker_hit'].get('p50_ms')} ms vs echo + GET "
        f"{cross['echo_get'].get('p50_ms')} ms: {cross['ratio_p50']}x (target <= 1.2)"
    )
    print(
        f"  lease on a miss: p50 {lease['total'].get('p50_ms')} ms (claim {lease['claim'].get('p50_ms')} + release "
        f"{lease['release'].get('p50_ms')}) vs extraction p50 {lease['miss_extraction_p50_ms']:.1f} ms"
    )
    print(f"wrote {RESULTS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
