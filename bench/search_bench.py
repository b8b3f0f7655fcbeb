"""SearchVoices: brute-force search latency at 1 k, 10 k and 100 k voices, memory per voice,
and where an approximate (ANN) index would start to pay.

    .venv/bin/python -m bench.search_bench            # ~2-3 min on 2 cores
    .venv/bin/python -m bench.search_bench --quick    # smaller samples: checks the harness

In-process: the Embedder's own `VectorIndex` (services/embedder/voices/index.py) filled with
random unit vectors of ECAPA's 192 dimensions through `add` (running ECAPA 100 k times would
take hours and would not change a dot product), searched for k = 10 with random queries,
against a floor doing the same arithmetic and nothing else: the bare matrix-vector product of
the same shape with the same kernel (einsum; numpy's `@` through OpenBLAS with its default
threads is timed too, to show why the index does not use it on a shared machine). Memory: the
index's allocated matrix, and every byte Python allocated to build the index (tracemalloc:
matrix, id strings, the id list and the id -> row dict), per voice.

Over gRPC at 10 k: the real Embedder in a child process (bench/harness.py), one real voice
registered through RegisterVoice and the other 9,999 written to Redis in the registry's own
layout (Voice JSON + unit float32 vector), searched with a `vector` query; against a bare
grpc.aio echo of the same request and response sizes (bench/floor.py) in another child process,
sampled in alternating blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing as mp
import os
import platform
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench.clips import synthesize, wav_bytes
from bench.floor import FloorRoute
from bench.harness import CHANNEL_OPTIONS, Series, ServerProcess, ServerSpec, interleaved, summarize
from bench.report import write_json
from services.common.paths import REPO_ROOT
from services.embedder.cache import keys
from services.embedder.voices.index import VectorIndex
from services.embedder.voices.model import Voice
from voxcache import tensors
from voxcache.v1 import embedder_pb2 as pb

DIM = 192  # ECAPA's speaker vector
K = 10
SIZES = (1_000, 10_000, 100_000)
GRPC_SIZE = 10_000
PREFIX = "voxcache"
SEARCH_METHOD = "/voxcache.v1.Embedder/SearchVoices"
REGISTER_METHOD = "/voxcache.v1.Embedder/RegisterVoice"
RESULTS = REPO_ROOT / "bench" / "results" / "search.json"


def random_units(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def filled_index(vectors: np.ndarray) -> VectorIndex:
    index = VectorIndex(DIM)
    for i, vector in enumerate(vectors):
        index.add(f"voice-{i:06d}", vector)
    return index


def memory_per_voice(vectors: np.ndarray) -> dict[str, float]:
    """Bytes Python allocated to build an index of these vectors, per voice (the input excluded)."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = filled_index(vectors)
    total = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    count = len(vectors)
    return {
        "voices": count,
        "total_bytes_per_voice": round(total / count, 1),
        "matrix_allocated_bytes_per_voice": round(index.nbytes / count, 1),
        "matrix_live_bytes_per_voice": DIM * 4,
        "ids_and_rows_bytes_per_voice": round((total - index.nbytes) / count, 1),
    }


def in_process(rng: np.random.Generator, size: int, queries: int, block: int) -> dict[str, Any]:
    """Search vs its floor (the same matrix-vector product alone), interleaved in blocks."""
    vectors = random_units(rng, size)
    started = time.perf_counter()
    index = filled_index(vectors)
    build_s = time.perf_counter() - started
    matrix = index._matrix[:size]  # the floor multiplies exactly the rows the search does
    asked = random_units(rng, queries)
    search_s: list[float] = []
    floor_s: list[float] = []
    blas_s: list[float] = []
    for at in range(0, queries, block):
        for q in asked[at : at + block]:
            t0 = time.perf_counter()
            index.search(q, K)
            search_s.append(time.perf_counter() - t0)
        for q in asked[at : at + block]:
            t0 = time.perf_counter()
            np.einsum("ij,j->i", matrix, q)
            floor_s.append(time.perf_counter() - t0)
        for q in asked[at : at + block]:
            t0 = time.perf_counter()
            matrix @ q
            blas_s.append(time.perf_counter() - t0)
    # Exactness, outside the timing: the index's top k are a full sort's top k.
    q = asked[0]
    expected = np.argsort(-(vectors @ q), kind="stable")[:K]
    assert [name for name, _ in index.search(q, K)] == [f"voice-{i:06d}" for i in expected]
    churn_s = []
    for i in range(min(queries, 200)):  # O(1) changes: remove a voice (swap-remove), add it back
        t0 = time.perf_counter()
        index.remove(f"voice-{i:06d}")
        index.add(f"voice-{i:06d}", vectors[i])
        churn_s.append(time.perf_counter() - t0)
    search, floor = summarize(search_s), summarize(floor_s)
    return {
        "voices": size,
        "search": search,
        "floor_matvec": floor,
        "matvec_blas_default_threads": summarize(blas_s),
        "search_over_floor_p50": round(search["p50_ms"] / floor["p50_ms"], 2),
        "build_us_per_voice": round(build_s / size * 1e6, 2),
        "remove_and_add_p50_us": round(float(np.median(churn_s)) * 1e6, 2),
    }


def seed_voices(redis_url: str, vectors_key: str, count: int, rng: np.random.Generator) -> None:
    """`count` voices in the registry's own layout, as RegisterVoice leaves them (minus the audio)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    vectors = random_units(rng, count)
    pipe = client.pipeline(transaction=False)
    for i, vector in enumerate(vectors):
        voice_id = f"seeded-{i:06d}"
        voice = Voice(voice_id, f"{i:064x}", 3.0, 0, {"ecapa": f"{PREFIX}:cond:ecapa:seeded:{i}"})
        pipe.hset(keys.voices(PREFIX), voice_id, voice.to_json())
        pipe.hset(vectors_key, voice_id, vector.astype("<f4").tobytes())
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    client.close()


async def over_grpc(
    redis_url: str, workdir: Path, samples: int, block: int, rng: np.random.Generator
) -> dict[str, Any]:
    import redis

    ctx = mp.get_context("spawn")
    # The one real registration needs ECAPA, but no runtime race: torch, without timing the others.
    spec = ServerSpec("embedder", redis_url, threads=2, embedder_args=("--ecapa-runtime", "torch"))
    embedder = ServerProcess(ctx, spec)
    floor: ServerProcess | None = None
    try:
        async with grpc.aio.insecure_channel(embedder.target, options=CHANNEL_OPTIONS) as channel:
            clip = wav_bytes(synthesize("The quick brown fox jumps over the lazy dog.", 4.0, workdir))
            register = pb.RegisterVoiceRequest(voice_id="real-voice", audio=clip).SerializeToString()
            await channel.unary_unary(REGISTER_METHOD)(register, timeout=120)
            client = redis.Redis.from_url(redis_url)
            vectors_key = next(iter(client.scan_iter(f"{PREFIX}:vectors:ecapa:*"))).decode()
            client.close()
            seed_voices(redis_url, vectors_key, GRPC_SIZE - 1, rng)
            query = tensors.to_proto(random_units(rng, 1)[0])
            request = pb.SearchVoicesRequest(vector=query, k=K).SerializeToString()
            search = channel.unary_unary(SEARCH_METHOD)
            answer = pb.SearchVoicesResponse.FromString(await search(request, timeout=60))  # loads the 10 k
            if answer.searched != GRPC_SIZE or len(answer.hits) != K:
                raise AssertionError(f"searched {answer.searched}, {len(answer.hits)} hits")
            response_bytes = len(answer.SerializeToString())
            route = FloorRoute("SearchEcho", response_bytes, redis_get=False)
            floor = ServerProcess(ctx, ServerSpec("floor", redis_url, floor_routes=(route,)))
            async with grpc.aio.insecure_channel(floor.target, options=CHANNEL_OPTIONS) as floor_channel:
                series = [
                    Series("search_10k_grpc", search, request),
                    Series("echo_floor", floor_channel.unary_unary(route.method), request),
                ]
                await interleaved(series, samples=samples, warmup=20, block=block, timeout_s=30)
        found, echo = series[0].summary(), series[1].summary()
        return {
            "voices": GRPC_SIZE,
            "voices_seeded_directly": GRPC_SIZE - 1,
            "request_bytes": len(request),
            "response_bytes": response_bytes,
            "search": found,
            "floor_echo": echo,
            "search_minus_floor_p50_ms": round(found["p50_ms"] - echo["p50_ms"], 4),
        }
    finally:
        if floor is not None:
            floor.close()
        embedder.close()


def ann_estimate(series: Sequence[dict[str, Any]], grpc_floor_p50_ms: float) -> dict[str, Any]:
    """Where one brute-force search costs as much as a whole bare gRPC round trip (interpolated
    between the measured sizes): beyond it the search dominates the call and an ANN index
    (sub-linear, approximate) or smaller vectors start to pay. 1 M is extrapolated from the
    slope between the two largest sizes."""
    points = [(s["voices"], s["search"]["p50_ms"]) for s in series]
    break_even: float | None = None
    for (n0, t0), (n1, t1) in itertools.pairwise(points):
        if t0 <= grpc_floor_p50_ms < t1:
            break_even = n0 + (grpc_floor_p50_ms - t0) / (t1 - t0) * (n1 - n0)
    (n0, t0), (n1, t1) = points[-2], points[-1]
    slope_ms = (t1 - t0) / (n1 - n0)
    at_million_ms = t1 + slope_ms * (1_000_000 - n1)
    where = f"about {break_even / 1000:,.0f} k voices" if break_even is not None else "outside the measured sizes"
    return {
        "slope_us_per_1k_voices_largest_sizes": round(slope_ms * 1e6, 2),
        "grpc_floor_p50_ms": grpc_floor_p50_ms,
        "break_even_voices": None if break_even is None else int(break_even),
        "brute_force_at_1m_voices_ms": round(at_million_ms, 2),
        "matrix_mb_at_1m_voices": round(1_000_000 * DIM * 4 / 1e6, 1),
        "sentence": (
            f"One brute-force search costs as much as a bare gRPC round trip ({grpc_floor_p50_ms:.2f} ms) at "
            f"{where} per tenant; from {n0:,} to {n1:,} it grows {slope_ms * 1e6:.0f} us per 1,000 voices "
            f"(the matrix leaves the CPU cache), about {at_million_ms:.0f} ms at 1 M plus "
            f"{1_000_000 * DIM * 4 / 1e6:.0f} MB per worker: an ANN index (HNSW) starts to pay from there."
        ),
    }


def table(results: dict[str, Any]) -> str:
    lines = ["voices    search p50 ms   floor (matvec) p50 ms   ratio   build us/voice   remove+add us"]
    for s in results["in_process"]:
        lines.append(
            f"{s['voices']:>7,}   {s['search']['p50_ms']:>13.4f}   {s['floor_matvec']['p50_ms']:>21.4f}   "
            f"{s['search_over_floor_p50']:>5.2f}   {s['build_us_per_voice']:>14.2f}   "
            f"{s['remove_and_add_p50_us']:>13.2f}"
        )
    m = results["memory"]
    lines.append(
        f"memory at {m['voices']:,} voices: {m['total_bytes_per_voice']:.0f} B/voice in all "
        f"({m['matrix_allocated_bytes_per_voice']:.0f} B matrix as allocated, {m['matrix_live_bytes_per_voice']} B "
        f"of it live, {m['ids_and_rows_bytes_per_voice']:.0f} B ids and rows)"
    )
    g = results.get("grpc")
    if g:
        lines.append(
            f"gRPC at {g['voices']:,}: SearchVoices p50 {g['search']['p50_ms']:.3f} ms, bare echo "
            f"{g['floor_echo']['p50_ms']:.3f} ms (difference {g['search_minus_floor_p50_ms']:.3f} ms)"
        )
    lines.append(results["ann"]["sentence"])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (checks the harness; numbers mean little)")
    parser.add_argument("--no-grpc", action="store_true", help="in-process series only (no Embedder, no ECAPA)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(13)
    queries, samples = (60, 100) if args.quick else (300, 400)
    results: dict[str, Any] = {
        "k": K,
        "dim": DIM,
        "machine": {
            "cpus": mp.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "loadavg_1m_before": round(os.getloadavg()[0], 2),
        },
        "in_process": [in_process(rng, size, queries, block=20) for size in SIZES],
        "memory": memory_per_voice(random_units(rng, SIZES[-1])),
    }
    if not args.no_grpc:
        from services.common.redis_server import LocalRedis

        with tempfile.TemporaryDirectory(prefix="voxcache-search-bench-") as tmp, LocalRedis() as redis_server:
            results["grpc"] = asyncio.run(over_grpc(redis_server.url, Path(tmp), samples, block=50, rng=rng))
    results["machine"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    floor_ms = results["grpc"]["floor_echo"]["p50_ms"] if "grpc" in results else 0.3
    results["ann"] = ann_estimate(results["in_process"], floor_ms)
    print(table(results))
    print(f"wrote {write_json(args.out, results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
