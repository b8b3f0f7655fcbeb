"""Redis hits on one redis-server vs on a Redis Cluster, each against its own echo + GET floor.

Run from the repository root:

    .venv/bin/python -m bench.cluster_bench                # ~1-2 min on 2 cores, mostly start-up
    .venv/bin/python -m bench.cluster_bench --samples 300  # fewer samples

It starts a private redis-server and a private 3 masters + 3 replicas Redis Cluster on
loopback (services/common/redis_cluster.py), and on each: a no-L1 Embedder (`--local-cache-mb
0`, so every hit is a Redis hit: `GET` + `EXPIRE … XX` and a verified record) and the floor
(bench/floor.py: a bare grpc.aio echo plus one `GET` of a copy of the real record, through the
same client factory as the Embedder's store, so on the cluster through the same cluster
client). Sequential `Embed` calls of one 5 s upload; the four series interleaved in blocks.
It also reads `MEMORY USAGE` of the entry on both backends (the key now carries a hash tag).

Writes bench/results/cluster.json and prints a table. The question it answers: what does the
cluster client cost a hit, beyond the one round trip any cached lookup pays?
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import redis

from bench.clips import synthesize, wav_bytes
from bench.floor import FLOOR_VALUE_KEY, FloorRoute
from bench.harness import CHANNEL_OPTIONS, Series, ServerProcess, ServerSpec, interleaved, ratio
from bench.report import RESULTS_DIR, machine, shown, write_json
from services.common.redis_client import make_client
from services.common.redis_cluster import LocalCluster
from services.common.redis_server import LocalRedis
from voxcache.v1 import embedder_pb2 as pb

EMBED_METHOD = "/voxcache.v1.Embedder/Embed"
SENTENCE = "The quick brown fox jumps over the lazy dog while the voice cache warms up for the next request."
BACKENDS = ("single", "cluster")
#: No L1, so every hit is a Redis hit. The runtime is named so that no start-up time goes to timing
#: runtimes: only the one preparing miss runs the model, and it is not measured.
EMBEDDER_ARGS = ("--local-cache-mb", "0", "--ecapa-runtime", "torch")
log = logging.getLogger("bench.cluster")


async def prepare(url: str, target: str, request: bytes, timeout_s: float) -> dict[str, Any]:
    """Store the clip's entry through the Embedder, check a second call is a Redis hit, copy the
    record to the floor's key on the same backend; the sizes and the entry's MEMORY USAGE."""
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        embed = channel.unary_unary(EMBED_METHOD)
        first = pb.EmbedResponse.FromString(await embed(request, timeout=timeout_s))
        again = await embed(request, timeout=timeout_s)
    if pb.EmbedResponse.FromString(again).tier != pb.CACHE_TIER_REDIS:
        raise RuntimeError(f"{url}: the second call was not a Redis hit")
    client = make_client(url, timeout_s=5.0)
    try:
        key = first.conditioning.cache_key
        record = await client.get(key)
        if record is None:
            raise RuntimeError(f"{url}: the entry {key} is not in Redis")
        await client.set(FLOOR_VALUE_KEY, record)
        memory = int(await client.memory_usage(key) or 0)  # on the key's own node in a cluster
    finally:
        await client.aclose()
    return {"cache_key": key, "response_bytes": len(again), "record_bytes": len(record), "memory_usage_bytes": memory}


async def run(samples: int, warmup: int, block: int, threads: int, workdir: Path) -> dict[str, Any]:
    started, load_before = time.perf_counter(), os.getloadavg()
    ctx = mp.get_context("spawn")
    clip = wav_bytes(synthesize(SENTENCE, 5.0, workdir))
    request = pb.EmbedRequest(audio=clip).SerializeToString()
    with ExitStack() as stack:
        single = stack.enter_context(LocalRedis())
        cluster = stack.enter_context(LocalCluster())
        urls = {"single": single.url, "cluster": cluster.url}
        with redis.Redis(port=single.port) as info_client:
            version = str(info_client.info("server")["redis_version"])
        log.info("cluster up: %s", cluster.url)
        workers: dict[str, ServerProcess] = {}
        floors: dict[str, ServerProcess] = {}
        prepared: dict[str, dict[str, Any]] = {}
        route_method = FloorRoute("echo_get", 0, redis_get=True).method
        for name in BACKENDS:
            spec = ServerSpec("embedder", urls[name], threads, embedder_args=EMBEDDER_ARGS)
            workers[name] = stack.enter_context(_closing(ServerProcess(ctx, spec, start_timeout_s=300)))
            prepared[name] = await prepare(urls[name], workers[name].target, request, 120.0)
            route = FloorRoute("echo_get", prepared[name]["response_bytes"], redis_get=True)
            floors[name] = stack.enter_context(
                _closing(ServerProcess(ctx, ServerSpec("floor", urls[name], floor_routes=(route,))))
            )
            log.info("%s: Embedder and floor up", name)
        channels = {
            f"{name}_{role}": grpc.aio.insecure_channel(proc[name].target, options=CHANNEL_OPTIONS)
            for name in BACKENDS
            for role, proc in (("hit", workers), ("floor", floors))
        }
        try:
            series = []
            for name in BACKENDS:
                hit = channels[f"{name}_hit"].unary_unary(EMBED_METHOD)
                floor = channels[f"{name}_floor"].unary_unary(route_method)
                series.append(Series(f"{name}_redis_hit", hit, request, expect=(pb.CACHE_TIER_REDIS,)))
                series.append(Series(f"{name}_echo_get_floor", floor, request))
            await interleaved(series, samples, warmup, block, timeout_s=30.0)
        finally:
            for channel in channels.values():
                await channel.close()
        latency = {s.name: s.summary() for s in series}
        p50 = {name: s["p50_ms"] for name, s in latency.items()}
        return {
            "latency_ms": latency,
            "ratios_p50": {
                "cluster_hit_vs_single_hit": ratio(p50["cluster_redis_hit"], p50["single_redis_hit"]),
                "single_hit_vs_its_floor": ratio(p50["single_redis_hit"], p50["single_echo_get_floor"]),
                "cluster_hit_vs_its_floor": ratio(p50["cluster_redis_hit"], p50["cluster_echo_get_floor"]),
                "cluster_floor_vs_single_floor": ratio(p50["cluster_echo_get_floor"], p50["single_echo_get_floor"]),
            },
            "entries": prepared,
            "machine": machine(workers["single"].info, version, load_before),
            "config": {"samples": samples, "warmup": warmup, "block": block, "threads": threads},
            "total_seconds": round(time.perf_counter() - started, 1),
        }


class _closing:
    """ServerProcess as a context manager (it has close(), not __exit__)."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process

    def __enter__(self) -> ServerProcess:
        return self.process

    def __exit__(self, *_: object) -> None:
        self.process.close()


def table(results: dict[str, Any]) -> str:
    rows = [f"{'series':<26}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'n':>6}"]
    for name, s in results["latency_ms"].items():
        rows.append(f"{name:<26}{s['p50_ms']:>9.3f}{s['p95_ms']:>9.3f}{s['p99_ms']:>9.3f}{s['n']:>6}")
    rows.append("")
    rows += [f"{name:<34}{value:>6.3f}" for name, value in results["ratios_p50"].items()]
    rows.append("")
    for name, entry in results["entries"].items():
        rows.append(f"{name:<8} MEMORY USAGE of the entry: {entry['memory_usage_bytes']} B ({entry['cache_key']})")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1000, help="timed calls per series")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls per series first")
    parser.add_argument("--block", type=int, default=50, help="calls per series before switching series")
    parser.add_argument("--threads", type=int, default=2, help="the Embedders' model threads")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "cluster.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    with tempfile.TemporaryDirectory(prefix="voxcache-cluster-bench-") as workdir:
        results = asyncio.run(run(args.samples, args.warmup, args.block, args.threads, Path(workdir)))
    path = write_json(args.out, results)
    print(table(results))
    print(f"\nwritten to {shown(path)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
