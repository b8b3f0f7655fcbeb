"""Embedder benchmark: cache hits vs misses vs the floors of a bare gRPC echo and echo + one Redis GET.

Run from the repository root:

    .venv/bin/python -m bench.embedder_bench            # full run, ~4 min on 2 cores
    .venv/bin/python -m bench.embedder_bench --quick    # smoke run, ~2 min: checks the harness only
    .venv/bin/python -m bench.embedder_bench --check    # exit 1 when a target is missed

Writes bench/results/embedder.json and bench/results/embedder.png and prints a table.
The last phase is bench/miss_bench.py: each ECAPA runtime and micro-batching of misses.

A cache hit is only interesting relative to what *any* gRPC service would cost on the
same machine for the same work. So the same run starts a bare grpc.aio "floor" server
(bench/floor.py) with one method per comparison: a bare echo for in-process (L1) hits,
which touch no Redis, and an echo plus one `await redis.get()` of a record-sized value
for hits served from Redis (by a second Embedder whose L1 holds nothing), each answering
with the real EmbedResponse's size for a request of the real EmbedRequest's size. The
Embedder's overhead is then the gap to its floor, independent of how fast this machine is.
How the comparison is kept fair (separate processes, raw bytes on both sides,
interleaved series) is explained in bench/harness.py; this module only orders the
phases and runs on 127.0.0.1 with one private redis-server, removed at the end.
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
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from redis.asyncio import Redis

from bench import miss_bench
from bench.clips import distinct_clips, synthesize, wav_bytes
from bench.floor import FLOOR_VALUE_KEY, FloorRoute
from bench.harness import (
    CHANNEL_OPTIONS,
    LoadShape,
    Series,
    ServerProcess,
    ServerSpec,
    interleaved,
    interleaved_pair_rounds,
    measure_throughput,
    ratio,
    run_concurrently,
    spawn_probe,
    summarize,
)
from bench.report import RESULTS_DIR, machine, missed_targets, shown, table, targets, write_results
from voxcache import tensors
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc

EMBED_METHOD = "/voxcache.v1.Embedder/Embed"
VOICE_ID = "bench-voice"
SENTENCES = (
    "The quick brown fox jumps over the lazy dog while the voice cache warms up for the next request.",
    "Speaker embeddings are computed once per distinct clip and then served from memory or from Redis.",
    "Every reference clip is hashed, looked up, and only on a miss decoded and sent through the model.",
)
#: Keys of ECAPA conditioning records, whatever the cache prefix.
COND_PATTERN = "*:cond:ecapa:*"
#: The second Embedder: same Redis, no L1, so every hit it serves is a Redis hit.
REDIS_WORKER_ARGS = ("--local-cache-mb", "0")
#: The Embedder that stores exact float32 ECAPA vectors, for the memory phase's comparison.
FLOAT32_ARGS = ("--ecapa-float16", "false")
#: Floor methods: (series name, whether it does one Redis GET). Response sizes are measured.
ECHO_VOICE, ECHO_UPLOAD, ECHO_GET_UPLOAD = "echo_voice_size", "echo_upload_size", "echo_get_upload_size"

log = logging.getLogger("bench.embedder")


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchConfig:
    """Sample counts and durations; the defaults finish in ~150 s on a 2-core machine, ~220 s with the miss phase."""

    clip_s: float = 5.0
    hit_samples: int = 1000
    hit_warmup: int = 100
    hit_block: int = 50
    #: Whole sequential measurements (`hit_samples` each); a hit target is the median round's ratio.
    hit_rounds: int = 3
    miss_samples: int = 20
    miss_warmup: int = 4
    concurrency: int = 32
    channels: int = 4
    load_warmup_s: float = 0.5
    #: Measured seconds per round; each series gets `load_rounds` rounds, interleaved with its
    #: floor's and first in half of them (so keep it even).
    load_duration_s: float = 1.5
    load_rounds: int = 4
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
            hit_rounds=1,
            miss_samples=5,
            miss_warmup=3,
            load_warmup_s=0.3,
            load_duration_s=1.0,
            load_rounds=2,
            seed_requests=30,
            memory_entries=40,
        )


# ---------------------------------------------------------------------------------------------
# What a run holds: clips, serialised requests, open servers and channels
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Audio:
    """The three speech bases, synthesised once up front so no timed phase waits for espeak-ng."""

    clip: bytes  # the 5 s upload every hit and miss sends
    seed_base: np.ndarray  # another voice, varied into the seed workload's clips
    memory_base: np.ndarray  # short speech, varied into the memory phase's entries


@dataclass(frozen=True)
class Requests:
    """Every EmbedRequest the run sends, serialised once: clients time bytes on the wire, not protobuf."""

    upload: bytes
    voice: bytes
    upload_miss: bytes
    voice_miss: bytes

    @classmethod
    def for_clip(cls, clip: bytes) -> Requests:
        bypass = pb.CacheOptions(bypass=True)
        return cls(
            upload=pb.EmbedRequest(audio=clip).SerializeToString(),
            voice=pb.EmbedRequest(voice_id=VOICE_ID).SerializeToString(),
            upload_miss=pb.EmbedRequest(audio=clip, cache=bypass).SerializeToString(),
            voice_miss=pb.EmbedRequest(voice_id=VOICE_ID, cache=bypass).SerializeToString(),
        )


@dataclass
class Rig:
    """The processes, pools and connections a run holds open, released together by `close`.

    `worker` is a second Embedder on the same Redis with no L1 (`--local-cache-mb 0`): what
    a request costs when another worker computed the entry. The floor is started last, once
    the Embedders' real response sizes are known.
    """

    redis: Redis
    embedder: ServerProcess
    worker: ServerProcess
    pool: ProcessPoolExecutor
    floor: ServerProcess | None = None

    def __post_init__(self) -> None:
        self.channel = grpc.aio.insecure_channel(self.embedder.target, options=CHANNEL_OPTIONS)
        self.worker_channel = grpc.aio.insecure_channel(self.worker.target, options=CHANNEL_OPTIONS)
        self.stub = embedder_pb2_grpc.EmbedderStub(self.channel)
        self.worker_stub = embedder_pb2_grpc.EmbedderStub(self.worker_channel)
        self.embed = self.channel.unary_unary(EMBED_METHOD)
        self.worker_embed = self.worker_channel.unary_unary(EMBED_METHOD)

    async def close(self) -> None:
        await self.channel.close()
        await self.worker_channel.close()
        await self.redis.aclose()
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.floor is not None:
            self.floor.close()
        self.worker.close()
        self.embedder.close()


# ---------------------------------------------------------------------------------------------
# The benchmark proper (parent process: orchestration and sequential-latency client)
# ---------------------------------------------------------------------------------------------
class Bench:
    """One run of the Embedder benchmark: every phase is a short method, timed into `phase_seconds`."""

    def __init__(self, config: BenchConfig, workdir: Path, miss_config: miss_bench.MissConfig | None = None) -> None:
        self.config = config
        #: The runtimes and batching phase (bench/miss_bench.py), run in its own process.
        self.miss_config = miss_config or miss_bench.MissConfig(threads=config.threads)
        self.workdir = workdir
        self.ctx = mp.get_context("spawn")
        self.results: dict[str, Any] = {}
        self.phase_s: dict[str, float] = {}
        #: Raw per-request latencies (seconds) by series: the plot's CDF needs more than the JSON keeps.
        self.series: dict[str, list[float]] = {}

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        """Time one phase into `phase_seconds`; a phase that raises is not recorded."""
        started = time.perf_counter()
        yield
        self.phase_s[name] = round(time.perf_counter() - started, 2)
        log.info("phase %-10s done in %5.1fs", name, self.phase_s[name])

    async def run(self, redis_url: str) -> dict[str, Any]:
        """Every phase against the Redis at `redis_url`; the servers stop whatever happens, then results are built.

        One seeded generator feeds the floor requests and the seed workload's order, in
        that order, so two runs with one config send the same bytes.
        """
        started, load_before = time.perf_counter(), os.getloadavg()
        rng = np.random.default_rng(self.config.seed)
        redis = Redis.from_url(redis_url)
        with self._phase("audio"):
            audio = self._audio()
        async with AsyncExitStack() as open_rig:
            with self._phase("startup"):
                rig = await self._start_embedders(redis, redis_url)
                open_rig.push_async_callback(rig.close)
                requests, sizes = await self._prepare(rig, audio.clip)
                floor = await self._start_floor(rig, redis_url, sizes)
            measured = await self._measure(rig, floor, requests, audio, rng, redis_url)
            embedder_stats, redis_version = await self._final_state(rig)
        self.results = {
            "sizes": sizes,
            **measured,
            "embedder_stats": embedder_stats,
            "targets": {
                **targets(measured["latency_ms"], measured["throughput"], measured["redis_memory"]),
                **measured["miss"]["targets"],
            },
            "machine": machine(rig.embedder.info, redis_version, load_before),
            "config": asdict(self.config),
            "phase_seconds": {**self.phase_s, "total": round(time.perf_counter() - started, 2)},
        }
        return self.results

    # -- start-up ---------------------------------------------------------------------------
    def _audio(self) -> Audio:
        c = self.config
        base = synthesize(SENTENCES[0], c.clip_s, self.workdir)
        seed_base = synthesize(SENTENCES[1], c.clip_s, self.workdir, voice="en-gb")
        memory_base = synthesize(SENTENCES[2], c.memory_clip_s, self.workdir)
        return Audio(wav_bytes(base), seed_base, memory_base)

    async def _start_embedders(self, redis: Redis, redis_url: str) -> Rig:
        """The Embedder as shipped, then the no-L1 worker on the runtime the first one chose
        (so it skips timing runtimes at start), and the (not yet spawned) client process."""
        embedder = ServerProcess(self.ctx, ServerSpec("embedder", redis_url, threads=self.config.threads))
        try:
            runtime = await self._runtime_of(embedder)
            worker = ServerProcess(
                self.ctx,
                ServerSpec("embedder", redis_url, self.config.threads, embedder_args=(*REDIS_WORKER_ARGS, *runtime)),
            )
        except BaseException:
            embedder.close()
            raise
        return Rig(redis, embedder, worker, ProcessPoolExecutor(max_workers=1, mp_context=self.ctx))

    @staticmethod
    async def _runtime_of(embedder: ServerProcess) -> tuple[str, ...]:
        """`--ecapa-runtime <what embedder chose>`, or nothing when it reports no choice."""
        async with grpc.aio.insecure_channel(embedder.target, options=CHANNEL_OPTIONS) as channel:
            stats = await embedder_pb2_grpc.EmbedderStub(channel).GetStats(pb.GetStatsRequest(), timeout=10)
        choice = stats.encoder_runtimes["ecapa"].runtime if "ecapa" in stats.encoder_runtimes else ""
        return ("--ecapa-runtime", choice) if choice else ()

    async def _prepare(self, rig: Rig, clip: bytes) -> tuple[Requests, dict[str, int]]:
        """Register the voice and warm every hit once; their real response sizes size the floor,
        and the real record's bytes, copied, are the value the floor's GET reads."""
        timeout = self.config.rpc_timeout_s
        await rig.stub.RegisterVoice(
            pb.RegisterVoiceRequest(voice_id=VOICE_ID, audio=clip, overwrite=True), timeout=timeout
        )
        requests = Requests.for_clip(clip)
        hit_response = await rig.embed(requests.upload, timeout=timeout)
        voice_response = await rig.embed(requests.voice, timeout=timeout)
        redis_response = await rig.worker_embed(requests.upload, timeout=timeout)
        if pb.EmbedResponse.FromString(redis_response).tier != pb.CACHE_TIER_REDIS:
            raise RuntimeError("the no-L1 worker did not answer from Redis")
        record = await rig.redis.get(pb.EmbedResponse.FromString(hit_response).conditioning.cache_key)
        if record is None:
            raise RuntimeError("the registered clip's record is not in Redis")
        await rig.redis.set(FLOOR_VALUE_KEY, record)
        return requests, {
            "clip_bytes": len(clip),
            "upload_request_bytes": len(requests.upload),
            "voice_request_bytes": len(requests.voice),
            "upload_hit_response_bytes": len(hit_response),
            "voice_hit_response_bytes": len(voice_response),
            "redis_hit_response_bytes": len(redis_response),
            "floor_redis_value_bytes": len(record),
        }

    async def _start_floor(self, rig: Rig, redis_url: str, sizes: dict[str, int]) -> ServerProcess:
        """One floor method per comparison, each answering with its series' real response size.

        The load client process is spawned here too, so its start-up cost lands in the
        start-up phase rather than in the first load round.
        """
        routes = (
            FloorRoute(ECHO_VOICE, sizes["voice_hit_response_bytes"], redis_get=False),
            FloorRoute(ECHO_UPLOAD, sizes["upload_hit_response_bytes"], redis_get=False),
            FloorRoute(ECHO_GET_UPLOAD, sizes["redis_hit_response_bytes"], redis_get=True),
        )
        rig.floor = ServerProcess(self.ctx, ServerSpec("floor", redis_url, floor_routes=routes))
        await asyncio.get_running_loop().run_in_executor(rig.pool, spawn_probe)
        return rig.floor

    # -- measurements -----------------------------------------------------------------------
    async def _measure(
        self,
        rig: Rig,
        floor: ServerProcess,
        requests: Requests,
        audio: Audio,
        rng: np.random.Generator,
        redis_url: str,
    ) -> dict[str, Any]:
        """The six measurements in order; each is a phase of its own in `phase_seconds`."""
        with self._phase("misses"):
            misses = await self._misses(rig, requests)
        with self._phase("hits"):
            hits, per_round = await self._hits(rig, floor, requests, rng)
            latency = {s.name: s.summary() | {"p50_ms_per_round": per_round[s.name]} for s in hits} | {
                s.name: s.summary(keep_samples=True) for s in misses
            }
            self.series = {s.name: s.samples for s in (*hits, *misses)}
        with self._phase("throughput"):
            throughput = await self._throughput(rig, floor, hits)
        with self._phase("seed"):
            seed = await self._seed_workload(rig.embed, audio.seed_base, rng)
        with self._phase("memory"):
            memory = await self._memory(rig, audio.memory_base, redis_url)
        with self._phase("miss"):
            miss = await asyncio.get_running_loop().run_in_executor(
                None, miss_bench.run_in_child, self.miss_config, self.workdir
            )
        return {
            "latency_ms": latency,
            "throughput": throughput,
            "seed_workload": seed,
            "redis_memory": memory,
            "miss": miss,
        }

    async def _misses(self, rig: Rig, requests: Requests) -> list[Series]:
        """Sequential misses (bypass: the model runs every time), one at a time in alternation."""
        c = self.config
        computed = (pb.CACHE_TIER_COMPUTED,)
        misses = [
            Series("miss_upload", rig.embed, requests.upload_miss, computed),
            Series("miss_voice_id", rig.embed, requests.voice_miss, computed),
        ]
        await interleaved(misses, c.miss_samples, c.miss_warmup, 1, c.rpc_timeout_s)
        return misses

    async def _hits(
        self, rig: Rig, floor: ServerProcess, requests: Requests, rng: np.random.Generator
    ) -> tuple[list[Series], dict[str, list[float]]]:
        """Sequential hits in blocks alternating with their floors, one pair at a time: each hit and
        the floor it is compared with, whose request is as long as the hit's (random bytes: the
        floor parses nothing). The whole measurement runs `hit_rounds` times; with the series
        (every round's samples) come each series' p50 per round, in ms, which the targets take
        the median ratio of (bench/report.py)."""
        c = self.config
        floor_channel = grpc.aio.insecure_channel(floor.target, options=CHANNEL_OPTIONS)
        routes = {name: floor_channel.unary_unary(route["method"]) for name, route in floor_routes(floor).items()}
        upload_sized = rng.bytes(len(requests.upload))
        pairs = [
            (
                Series(ECHO_VOICE, routes[ECHO_VOICE], rng.bytes(len(requests.voice))),
                Series("hit_voice_id", rig.embed, requests.voice, (pb.CACHE_TIER_LOCAL,)),
            ),
            (
                Series(ECHO_UPLOAD, routes[ECHO_UPLOAD], upload_sized),
                Series("hit_upload", rig.embed, requests.upload, (pb.CACHE_TIER_LOCAL,)),
            ),
            (
                Series(ECHO_GET_UPLOAD, routes[ECHO_GET_UPLOAD], upload_sized),
                Series("redis_hit_upload", rig.worker_embed, requests.upload, (pb.CACHE_TIER_REDIS,)),
            ),
        ]
        rounds = await interleaved_pair_rounds(
            pairs, c.hit_rounds, c.hit_samples, c.hit_warmup, c.hit_block, c.rpc_timeout_s
        )
        await floor_channel.close()
        series = [one for pair in pairs for one in pair]
        return series, {one.name: [summarize(r[one.name])["p50_ms"] for r in rounds] for one in series}

    async def _throughput(self, rig: Rig, floor: ServerProcess, hits: Sequence[Series]) -> dict[str, Any]:
        """Hits-only load at `concurrency` clients from the client process; a miss or error fails the run."""
        c = self.config
        stubs = (rig.stub, rig.worker_stub)
        stats0 = [await stub.GetStats(pb.GetStatsRequest(), timeout=10) for stub in stubs]
        methods = {name: route["method"] for name, route in floor_routes(floor).items()}
        servers = {"hit_voice_id": rig.embedder, "hit_upload": rig.embedder, "redis_hit_upload": rig.worker}
        plan = [(s.name, servers.get(s.name, floor), methods.get(s.name, EMBED_METHOD), s.request) for s in hits]
        shape = LoadShape(c.concurrency, c.channels, c.load_warmup_s, c.load_duration_s, c.load_rounds)
        throughput: dict[str, Any] = {}
        # One pair (a floor and the hits compared with it) at a time, as for latency: the two
        # series of a ratio then run in adjacent windows, each first in half of the rounds.
        for pair in zip(plan[::2], plan[1::2], strict=True):
            throughput |= await measure_throughput(rig.pool, pair, shape)
        for stub, before in zip(stubs, stats0, strict=True):
            after = await stub.GetStats(pb.GetStatsRequest(), timeout=10)
            if after.misses != before.misses or after.errors != before.errors:
                raise RuntimeError(
                    f"hits-only load saw {after.misses - before.misses} misses, {after.errors - before.errors} errors"
                )
        return throughput

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
        audio_list = seed_sequence(distinct_clips(base, unique_count + 1), c.seed_requests, rng)
        out: dict[str, Any] = {
            "requests": c.seed_requests,
            "concurrency": c.seed_concurrency,
            "reuse_fraction": c.seed_reuse,
            "unique_clips": unique_count,
        }
        for mode, options in (("with_cache", pb.CacheOptions()), ("without_cache", pb.CacheOptions(bypass=True))):
            requests = [pb.EmbedRequest(audio=a, cache=options).SerializeToString() for a in audio_list]
            latencies, sources, wall = await run_concurrently(embed, requests, c.seed_concurrency, c.rpc_timeout_s)
            out[mode] = seed_summary(latencies, sources, wall)
            self.series[f"seed_{mode}"] = latencies
            log.info("seed %-14s p50 %7.1f ms  p95 %7.1f ms", mode, out[mode]["p50_ms"], out[mode]["p95_ms"])
        out["p50_speedup"] = ratio(out["without_cache"]["p50_ms"], out["with_cache"]["p50_ms"])
        out["p95_speedup"] = ratio(out["without_cache"]["p95_ms"], out["with_cache"]["p95_ms"])
        return out

    async def _memory(self, rig: Rig, base: np.ndarray, redis_url: str) -> dict[str, Any]:
        """Redis memory per ECAPA entry as shipped (float16-rounded) and with `--ecapa-float16 false`
        (a third Embedder on the same Redis and runtime, for this phase only), and the cosine
        between the two Embedders' vectors for the same clips."""
        clips = distinct_clips(base, self.config.memory_entries)
        rounded = await self._memory_of(rig.stub, rig.redis, clips)
        spec = ServerSpec(
            "embedder",
            redis_url,
            self.config.threads,
            embedder_args=(*FLOAT32_ARGS, *await self._runtime_of(rig.embedder)),
        )
        float32 = ServerProcess(self.ctx, spec)
        try:
            async with grpc.aio.insecure_channel(float32.target, options=CHANNEL_OPTIONS) as channel:
                stub = embedder_pb2_grpc.EmbedderStub(channel)
                exact = await self._memory_of(stub, rig.redis, clips)
                cosines = [await self._cosine(rig.stub, stub, clip) for clip in clips]
        finally:
            float32.close()
        log.info(
            "memory: %d B per entry (float16-rounded), %d B (float32); min cosine %.7f",
            rounded["memory_usage_mean_bytes"],
            exact["memory_usage_mean_bytes"],
            min(cosines),
        )
        return {
            **rounded,
            "float32": exact,
            "float16_vs_float32_cosine_min": round(min(cosines), 7),
            "float16_vs_float32_cosine_mean": round(float(np.mean(cosines)), 7),
        }

    async def _cosine(
        self, rounded: embedder_pb2_grpc.EmbedderStub, exact: embedder_pb2_grpc.EmbedderStub, clip: bytes
    ) -> float:
        """Cosine between the speaker vectors two Embedders serve for one clip (both hits here)."""
        request = pb.EmbedRequest(audio=clip)
        timeout = self.config.rpc_timeout_s
        a, b = [
            tensors.from_proto((await stub.Embed(request, timeout=timeout)).conditioning.tensors["speaker"])
            for stub in (rounded, exact)
        ]
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    async def _memory_of(
        self, stub: embedder_pb2_grpc.EmbedderStub, redis: Redis, clips: Sequence[bytes]
    ) -> dict[str, Any]:
        """Store the clips' entries through the real service (Preload), then ask Redis what they cost.

        Short clips: the conditioning is 192 floats whatever the clip length, so this
        only saves model time. The delta is taken around the Preload alone.
        """
        n = len(clips)
        before_keys = {k async for k in redis.scan_iter(match=COND_PATTERN, count=1000)}
        stats0 = await redis.memory_stats()
        used0 = int((await redis.info("memory"))["used_memory"])
        summary = await self._preload(stub, clips)
        used1 = int((await redis.info("memory"))["used_memory"])
        stats1 = await redis.memory_stats()
        new_keys = sorted({k async for k in redis.scan_iter(match=COND_PATTERN, count=1000)} - before_keys)
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
            "key_chars": len(new_keys[0]),
            "value_bytes": int(value_bytes),
            "memory_usage_one_key_bytes": usages[0],
            "memory_usage_mean_bytes": round(float(np.mean(usages)), 1),
            "memory_usage_max_bytes": max(usages),
            "used_memory_delta_per_entry_bytes": round((used1 - used0) / n, 1),
            **memory_breakdown(stats0, stats1, n),
            "registered_voice_audio_key_bytes": voice_audio_usage,
            "preload_ms": round(summary.total_ms, 1),
        }

    async def _preload(self, stub: embedder_pb2_grpc.EmbedderStub, clips: Sequence[bytes]) -> pb.PreloadResponse:
        """All clips in one Preload stream, with a deadline that grows with their number."""

        async def stream() -> AsyncIterator[pb.PreloadRequest]:
            for i, audio in enumerate(clips):
                yield pb.PreloadRequest(audio=audio, label=f"mem-{i}")

        return await stub.Preload(stream(), timeout=max(self.config.rpc_timeout_s, len(clips) * 2.0))

    # -- what the run ends with -------------------------------------------------------------
    @staticmethod
    async def _final_state(rig: Rig) -> tuple[dict[str, Any], str]:
        """The Embedder's own counters after every phase, and the redis-server version."""
        s = await rig.stub.GetStats(pb.GetStatsRequest(), timeout=10)
        worker = await rig.worker_stub.GetStats(pb.GetStatsRequest(), timeout=10)
        redis_info = await rig.redis.info("server")
        stats = {
            "requests": s.requests,
            "hits": s.hits,
            "misses": s.misses,
            "extractions": s.extractions,
            "errors": s.errors,
            "redis_errors": s.redis_errors,
            "extraction_p50_ms": round(s.extraction_latency.p50_ms, 2),
            "extraction_p95_ms": round(s.extraction_latency.p95_ms, 2),
            "ecapa_runtime": s.encoder_runtimes["ecapa"].runtime,
            "ecapa_runtime_warmup_ms": dict(s.encoder_runtimes["ecapa"].warmup_ms),
            "worker_redis_hits": worker.redis_hits,
            "worker_local_hits": worker.local_hits,
            "worker_misses": worker.misses,
        }
        return stats, str(redis_info.get("redis_version", "?"))


def floor_routes(floor: ServerProcess) -> dict[str, dict[str, Any]]:
    """The floor's methods as it reported them at start: method path, response size, GET or not."""
    return dict(floor.info["routes"])


# ---------------------------------------------------------------------------------------------
# Pure pieces of the seed workload and memory phases
# ---------------------------------------------------------------------------------------------
def seed_sequence(clips: Sequence[bytes], requests: int, rng: np.random.Generator) -> list[bytes]:
    """`clips[0]` reused for all but `len(clips) - 1` requests, each other clip sent once, shuffled by `rng`."""
    unique_count = len(clips) - 1
    order = np.array([True] * (requests - unique_count) + [False] * unique_count)
    rng.shuffle(order)
    unique_iter = iter(clips[1:])
    return [clips[0] if is_reused else next(unique_iter) for is_reused in order]


def seed_summary(latencies: Sequence[float], sources: Sequence[int], wall_s: float) -> dict[str, Any]:
    """One seed-workload mode's entry, with hits and misses apart.

    A hit waiting behind a forward pass for CPU shows up in `by_outcome`.
    """
    computed = sum(s == pb.CACHE_TIER_COMPUTED for s in sources)
    split = {
        kind: summarize(
            [x for x, s in zip(latencies, sources, strict=True) if is_miss == (s == pb.CACHE_TIER_COMPUTED)]
        )
        for kind, is_miss in (("hits", False), ("misses", True))
    }
    return {
        **summarize(latencies),
        "by_outcome": split,
        "wall_s": round(wall_s, 2),
        "requests_per_s": round(len(latencies) / wall_s, 2),
        "computed": computed,
        "hit_ratio": round(1 - computed / len(sources), 3),
    }


def memory_breakdown(before: dict[str, Any], after: dict[str, Any], entries: int) -> dict[str, Any]:
    """The used_memory delta split by MEMORY STATS into key/value objects, hash tables and client buffers.

    Client buffers are noise (the Embedder's connections, not data), so they are
    reported in total rather than per entry.
    """

    def delta(name: str) -> int:
        return int(after.get(name, 0)) - int(before.get(name, 0))

    def hashtables(stats: dict[str, Any]) -> int:
        db = stats.get("db.0") or {}
        return int(db.get("overhead.hashtable.main", 0)) + int(db.get("overhead.hashtable.expires", 0))

    return {
        "dataset_delta_per_entry_bytes": round(delta("dataset.bytes") / entries, 1),
        "hashtables_delta_per_entry_bytes": round((hashtables(after) - hashtables(before)) / entries, 1),
        "client_buffers_delta_bytes": delta("clients.normal"),
    }


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
        "hit_rounds": int,
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
        miss_defaults = miss_bench.MissConfig.quick() if args.quick else miss_bench.MissConfig()
        miss_config = replace(miss_defaults, threads=config.threads)
        bench = Bench(config, Path(tmp), miss_config)
        results = asyncio.run(bench.run(redis.url))
    json_path, png_path = write_results(args.out_dir, results, bench.series)
    print()
    print(table(results))
    print(f"\nwrote {shown(json_path)}")
    print(f"wrote {shown(png_path)}")
    return 1 if args.check and missed_targets(results) else 0


if __name__ == "__main__":
    sys.exit(main())
