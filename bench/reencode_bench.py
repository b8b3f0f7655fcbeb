"""Re-encoding-proof keys and warm restarts, measured on the real core, Redis and ECAPA weights.

    .venv/bin/python -m bench.reencode_bench            # -> bench/results/reencode.json
    .venv/bin/python -m bench.reencode_bench --quick    # fewer samples, for a smoke run

Everything drives `Embedder` exactly as the server wires it (`server.build_core`: the real
ECAPA with `--ecapa-runtime auto`, a private redis-server), without gRPC, so the figures are
the core's own work. Three parts:

1. **The alias's cost.** Round by round, interleaved: the same upload again (L1 hit); the same
   upload in a worker whose L1 holds nothing (Redis hit); the same samples in new bytes (a WAV
   with a LIST chunk holding a counter: decode, PCM index GET, the entry, the alias SET); the
   floor, one decode of that upload done alone (`audio.read` + `keys.pcm_digest`, the work the
   alias is claimed to cost), inline and, as the service runs it, on the default executor; and
   a clip never seen (decode + model).
2. **Redis memory** (`MEMORY USAGE`, key included) of an entry, its PCM index and an alias.
3. **Warm vs cold restart.** A first worker serves a population of clips with Zipf-distributed
   popularity (and the literal seed workload: one clip), then stops; a fresh worker on the same
   Redis serves the workload's first requests after its "restart" (80 % reuse of the
   population, 20 % clips never seen, 4 in flight), once after a warm start and once cold, in
   alternating rounds. Reported: the share of requests answered from L1 and the reuse
   requests' latency. The bench's "first minute" is the first `requests` requests (60: tens of
   seconds on 2 shared cores, most of it the new clips' model time), not a wall-clock minute;
   the run is kept to about two minutes on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.clips import distinct_clips, synthesize
from bench.report import RESULTS_DIR, write_json

SENTENCE = "A voice that comes back in another container should not cost the model a second time."
POPULATION_SENTENCE = "Every restarted worker should find its most requested voices already in memory."


@dataclass(frozen=True)
class ReencodeConfig:
    clip_s: float = 5.0
    threads: int = 2
    #: Timed requests per series in part 1 (misses: `misses`), interleaved in `rounds`.
    samples: int = 60
    misses: int = 6
    rounds: int = 4
    #: Part 3: clips in the hot population, requests per run, reuse share, runs per mode.
    population: int = 30
    requests: int = 60
    reuse: float = 0.8
    concurrency: int = 4
    restart_rounds: int = 1
    zipf_s: float = 1.1
    seed: int = 13

    @classmethod
    def quick(cls) -> ReencodeConfig:
        return cls(samples=12, misses=2, rounds=2, population=8, requests=20)


def with_list_chunk(wav: bytes, tag: int) -> bytes:
    """The WAV with a LIST/INFO chunk naming `tag`: new bytes, the very same samples."""
    (fmt_size,) = struct.unpack_from("<I", wav, 16)
    cut = 20 + fmt_size
    text = f"take {tag:08d}\0".encode()
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(text)) + text + b"\0" * (len(text) & 1)
    body = wav[8:cut] + b"LIST" + struct.pack("<I", len(info)) + info + wav[cut:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


def summarize(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(float(np.percentile(ordered, 90)), 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }


class Rig:
    def __init__(self, encoder: Any, redis_url: str, prefix: str) -> None:
        self.encoder, self.redis_url, self.prefix = encoder, redis_url, prefix

    def core(self, **settings: Any) -> Any:
        from services.embedder import server
        from services.embedder.cache.record import Keyring
        from services.embedder.cache.redis_store import RedisStore
        from services.embedder.metrics import EmbedderStats
        from services.embedder.settings import EmbedderSettings

        configured = replace(EmbedderSettings(), redis_url=self.redis_url, cache_prefix=self.prefix, **settings)
        stats = EmbedderStats()
        store = RedisStore(self.redis_url, timeout_s=1.0)
        return server.build_core(
            configured, {"ecapa": self.encoder}, store, ThreadPoolExecutor(1), stats, Keyring.parse("")
        )


async def timed(core: Any, audio: bytes) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await core.embed(audio=audio)
    return (time.perf_counter() - started) * 1000, result


async def alias_cost(rig: Rig, base_wav: bytes, misses: list[bytes], config: ReencodeConfig) -> dict[str, Any]:
    from services.embedder import audio as audio_mod
    from services.embedder.cache import keys

    worker = rig.core()
    l1less = rig.core(local_cache_mb=0)  # every hit is a Redis GET + EXPIRE XX, a verified record
    limits = worker.limits
    first = await worker.embed(audio=base_wav)
    assert first.tier.value == "computed"
    names = ("l1_hit", "redis_hit", "alias", "floor_decode", "floor_decode_executor")
    series: dict[str, list[float]] = {name: [] for name in (*names, "miss")}
    tiers: dict[str, set[str]] = {name: set() for name in series}
    tag = 0
    per_round, miss_per_round = config.samples // config.rounds, max(1, config.misses // config.rounds)
    miss_iter = iter(misses)
    for _ in range(config.rounds):
        for _ in range(per_round):
            for name in names:
                if name == "l1_hit":
                    ms, result = await timed(worker, base_wav)
                elif name == "redis_hit":
                    ms, result = await timed(l1less, base_wav)
                elif name == "alias":
                    tag += 1
                    ms, result = await timed(worker, with_list_chunk(base_wav, tag))
                else:
                    variant = with_list_chunk(base_wav, 10**7 + tag)

                    def decode(data: bytes = variant) -> None:
                        source = audio_mod.read(data, limits)
                        keys.pcm_digest(source.sample_rate, source.samples)

                    started = time.perf_counter()
                    if name == "floor_decode":
                        decode()
                    else:  # where the service decodes: the default executor, off the event loop
                        await asyncio.get_running_loop().run_in_executor(None, decode)
                    ms, result = (time.perf_counter() - started) * 1000, None
                series[name].append(ms)
                if result is not None:
                    tiers[name].add(result.tier.value)
        for _ in range(miss_per_round):
            clip = next(miss_iter, None)
            if clip is not None:
                ms, result = await timed(worker, clip)
                series["miss"].append(ms)
                tiers["miss"].add(result.tier.value)
    out: dict[str, Any] = {name: {**summarize(ms), "tiers": sorted(tiers[name])} for name, ms in series.items()}
    out["extractions"] = worker.stats.extractions
    out["aliases_created"] = worker.pcm_index.counters.aliases_created
    floor = out["floor_decode_executor"]["p50_ms"]
    out["alias_over_floor_decode"] = round(out["alias"]["p50_ms"] / floor, 3)
    out["alias_minus_floor_decode_ms"] = round(out["alias"]["p50_ms"] - floor, 3)
    out["miss_over_alias"] = round(out["miss"]["p50_ms"] / out["alias"]["p50_ms"], 2)
    await worker.close()
    await l1less.close()
    return out


def memory(redis_url: str, prefix: str) -> dict[str, Any]:
    import redis

    from services.embedder.cache import alias

    client = redis.Redis.from_url(redis_url)
    sizes: dict[str, list[int]] = {"entry": [], "pcm_index": [], "alias": []}
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        kind = key.split(b":")[1] if key.startswith(prefix.encode() + b":") else b""
        if kind == b"pcm":
            sizes["pcm_index"].append(int(client.memory_usage(key, samples=0)))
        elif kind == b"cond":
            value = client.get(key) or b""
            sizes["alias" if alias.is_alias(value) else "entry"].append(int(client.memory_usage(key, samples=0)))
    return {
        name: {"median_bytes": int(statistics.median(v)), "max_bytes": max(v), "n": len(v)}
        for name, v in sizes.items()
        if v
    }


async def run_workload(core: Any, requests: Sequence[tuple[bool, bytes]], concurrency: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    reuse_ms: list[float] = []
    tiers: list[str] = []

    async def one(reused: bool, audio: bytes) -> None:
        async with gate:
            ms, result = await timed(core, audio)
        tiers.append(result.tier.value)
        if reused:
            reuse_ms.append(ms)

    started = time.perf_counter()
    await asyncio.gather(*(one(reused, audio) for reused, audio in requests))
    wall = time.perf_counter() - started
    reused_count = sum(1 for reused, _ in requests if reused)
    local = tiers.count("local")
    return {
        "requests": len(requests),
        "wall_s": round(wall, 2),
        "l1_hit_ratio": round(local / len(requests), 4),
        "l1_hit_ratio_of_reuse": round(local / reused_count, 4) if reused_count else 0.0,
        "tiers": {t: tiers.count(t) for t in sorted(set(tiers))},
        "reuse": summarize(reuse_ms),
    }


async def restarts(rig: Rig, population: list[bytes], fresh: list[bytes], config: ReencodeConfig) -> dict[str, Any]:
    """Warm vs cold after a restart, for the Zipf population and for the seed workload (one clip)."""
    rng = np.random.default_rng(config.seed)
    fresh_iter = iter(fresh)
    out: dict[str, Any] = {}
    for label, clips in (("seed_one_voice", population[:1]), (f"zipf_{len(population)}_voices", population)):
        weights = 1 / np.arange(1, len(clips) + 1) ** config.zipf_s
        weights /= weights.sum()
        before = rig.core(hotness_flush_s=3600)  # the first life: every clip asked for by popularity
        for index in rng.choice(len(clips), size=4 * len(clips) + 10, p=weights):
            await before.embed(audio=clips[index])
        await before.close()  # writes its counts to the hot set
        runs: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
        for _ in range(config.restart_rounds):
            for mode in ("warm", "cold"):
                requests = []
                for _ in range(config.requests):
                    if rng.random() < config.reuse:
                        requests.append((True, clips[rng.choice(len(clips), p=weights)]))
                    else:
                        requests.append((False, next(fresh_iter)))
                worker = rig.core(warm_start=mode == "warm", hotness_flush_s=3600)
                warmed = await worker.warm_start() if mode == "warm" else None
                result = await run_workload(worker, requests, config.concurrency)
                if warmed is not None:
                    result["warm_start"] = {"entries": warmed.entries, "bytes": warmed.bytes, "ms": round(warmed.ms, 2)}
                runs[mode].append(result)
                await worker.close()
        out[label] = {
            "clips": len(clips),
            "runs": runs,
            **{
                f"{mode}_l1_hit_ratio": round(statistics.fmean(r["l1_hit_ratio"] for r in runs[mode]), 4)
                for mode in runs
            },
            **{
                f"{mode}_reuse_p50_ms": round(statistics.median(r["reuse"]["p50_ms"] for r in runs[mode]), 3)
                for mode in runs
            },
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "reencode.json")
    args = parser.parse_args(argv)
    config = ReencodeConfig.quick() if args.quick else ReencodeConfig()

    from bench.clips import wav_bytes
    from services.common.redis_server import LocalRedis
    from services.embedder.encoders.ecapa import from_settings
    from services.embedder.settings import EmbedderSettings

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, LocalRedis() as redis_server:
        workdir = Path(tmp)
        base = synthesize(SENTENCE, config.clip_s, workdir)
        other = synthesize(POPULATION_SENTENCE, config.clip_s, workdir, voice="en-gb")
        misses = distinct_clips(base, config.misses)
        population = distinct_clips(other, config.population)
        runs = 2 * 2 * config.restart_rounds  # two workloads, warm and cold
        new_needed = round(config.requests * (1 - config.reuse) * runs * 1.5) + 30
        fresh = distinct_clips(np.flip(other).copy(), new_needed)
        # As the server loads it: --ecapa-runtime auto, float16-rounded vectors (--ecapa-float16).
        encoder = from_settings(replace(EmbedderSettings(), device="cpu", threads=config.threads))
        rig = Rig(encoder, redis_server.url, "bench-alias")
        base_wav = wav_bytes(base)
        assert io.BytesIO(base_wav).getbuffer().nbytes > 0
        part1 = asyncio.run(alias_cost(rig, base_wav, misses, config))
        part2 = memory(redis_server.url, "bench-alias")
        part3 = asyncio.run(restarts(Rig(encoder, redis_server.url, "bench-restart"), population, fresh, config))
    results = {
        "config": asdict(config),
        "runtime": encoder.runtime.name,
        "alias_cost": part1,
        "redis_memory": part2,
        "restart": part3,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, results)
    print_report(results)
    print(f"wrote {args.out}")
    return 0


def print_report(r: dict[str, Any]) -> None:
    a = r["alias_cost"]
    print("series (core, no gRPC)        p50 ms    p90 ms    n   tiers")
    for name in ("l1_hit", "redis_hit", "floor_decode", "floor_decode_executor", "alias", "miss"):
        s = a[name]
        print(f"  {name:26} {s['p50_ms']:9.3f} {s['p90_ms']:9.3f} {s['n']:4}   {','.join(s['tiers'])}")
    print(
        f"alias / one decode on the executor {a['alias_over_floor_decode']}x (+{a['alias_minus_floor_decode_ms']} ms); "
        f"miss / alias {a['miss_over_alias']}x; extractions {a['extractions']}, aliases {a['aliases_created']}"
    )
    for name, m in r["redis_memory"].items():
        print(f"MEMORY USAGE {name:10} median {m['median_bytes']} B (max {m['max_bytes']}, n={m['n']})")
    for label, w in r["restart"].items():
        print(
            f"{label}: L1 hit ratio warm {w['warm_l1_hit_ratio']:.3f} vs cold {w['cold_l1_hit_ratio']:.3f}; "
            f"reuse p50 warm {w['warm_reuse_p50_ms']} ms vs cold {w['cold_reuse_p50_ms']} ms"
        )


if __name__ == "__main__":
    sys.exit(main())
