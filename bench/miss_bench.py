"""The cost of a miss: each ECAPA runtime, and micro-batching of concurrent distinct misses.

A phase of `bench.embedder_bench` (its JSON's "miss" section, in the same run as the other
series), and runnable alone, e.g. on a machine with a GPU, where batching is the main
throughput lever (scripts/gpu_batching.sh):

    .venv/bin/python -m bench.miss_bench                 # CPU -> bench/results/miss.json
    .venv/bin/python -m bench.miss_bench --device cuda   # -> bench/results/miss-cuda.json
    .venv/bin/python -m bench.miss_bench --check         # exit 1 when a target is missed

It loads the encoder exactly as the Embedder does (`--ecapa-runtime auto`: the choice and
its warm-up timings are reported), then times every runtime on the same 5 s speech clip,
interleaved round by round, and on one full batch (`--max-batch` clips in one pass: the
choice is made on one clip, and a runtime's kernels can change with the batch; torch without
oneDNN once gave batches of 16 to NNPACK at 14x the time per clip), and last drives the real
core (`Embedder`, no gRPC, no Redis) with 1, 4 and 16 distinct misses in flight (bypass: the
model runs for every request), unbatched and batched, alternating, and compares each clip's
batched vector with its unbatched one. Medians throughout: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.clips import SAMPLE_RATE, distinct_clips, synthesize
from bench.report import RESULTS_DIR, _target, miss_lines, shown, write_json

SENTENCE = "The quick brown fox jumps over the lazy dog while the voice cache warms up for the next request."


@dataclass(frozen=True)
class MissConfig:
    clip_s: float = 5.0
    device: str = "cpu"
    threads: int = 2
    #: Timed forward passes per runtime (after one untimed), interleaved across runtimes.
    runtime_rounds: int = 7
    #: Timed full-batch passes per runtime (the best is kept: the first may pay for the new shape).
    batch_rounds: int = 2
    levels: tuple[int, ...] = (1, 4, 16)
    #: Distinct misses per measurement; each (level, mode) is measured `rounds` times, alternating modes.
    misses: int = 16
    rounds: int = 2
    batch_window_ms: float = 5.0
    max_batch: int = 16

    @classmethod
    def quick(cls) -> MissConfig:
        return cls(runtime_rounds=2, batch_rounds=1, misses=8, rounds=1)


def miss_targets(out: dict[str, Any]) -> dict[str, Any]:
    """Verdicts for --check: the choice, every runtime's agreement, batching's agreement and gain."""
    timings = {name: r["median_ms"] for name, r in out["runtimes"].items()}
    in_batch = {name: r["batch_ms_per_clip"] for name, r in out["runtimes"].items()}
    chosen = out["choice"]["runtime"]
    top = out["levels"][-1]
    gain = out["batching"][str(top)]["speedup"]
    return {
        "runtime_choice_vs_fastest": _target(
            round(timings[chosen] / min(timings.values()), 3), "<=", 1.25, "chosen runtime ms / fastest ms"
        ),
        # Chosen on one clip, the runtime also runs every batched pass: it must not fall off a cliff there.
        "runtime_choice_in_batch_vs_fastest": _target(
            round(in_batch[chosen] / min(in_batch.values()), 3),
            "<=",
            1.5,
            "full batch: chosen ms/clip / fastest",
        ),
        "runtime_min_cosine": _target(
            min(r["cosine_to_torch"] for r in out["runtimes"].values()), ">=", 0.9999, "runtimes' cosine to torch"
        ),
        "batched_min_cosine": _target(out["batched_min_cosine"], ">=", 0.999, "batched vs unbatched cosine"),
        f"batched_gain_{top}": {
            **_target(gain, ">=", 1.0 if out["device"] == "cpu" else 2.0, f"batched / unbatched misses/s at {top}"),
            # On 2 shared cores a pass already uses both: batching can only save per-call overhead.
            "informational": out["device"] == "cpu",
        },
    }


def _encoder(config: MissConfig) -> Any:
    from services.common.paths import MODELS_DIR
    from services.embedder.encoders.ecapa import EcapaEncoder

    return EcapaEncoder(MODELS_DIR / "ecapa", device=config.device, threads=config.threads, runtime="auto")


def time_runtimes(
    encoder: Any, clip: np.ndarray, rounds: int, batch: Sequence[np.ndarray], batch_rounds: int
) -> dict[str, Any]:
    """Each runtime that can run here: median and p90 ms of features + forward pass on `clip`, its
    cosine to torch, and its best ms per clip over `batch` in one pass."""
    from services.embedder.encoders import runtimes

    forwards, skipped = encoder.candidates(runtimes.CANDIDATES)
    reference = forwards[runtimes.TORCH](*encoder.features([clip]))
    samples: dict[str, list[float]] = {name: [] for name in forwards}
    cosine = {
        name: float(runtimes.cosines(reference, forward(*encoder.features([clip]))).min())
        for name, forward in forwards.items()
    }
    for _ in range(rounds):
        for name, forward in forwards.items():
            started = time.perf_counter()
            forward(*encoder.features([clip]))
            samples[name].append((time.perf_counter() - started) * 1000)
    # Best of `batch_rounds`, interleaved, as `auto` times them; every runtime has already run once.
    best_batch_ms = runtimes.time_candidates(forwards, *encoder.features(batch), batch_rounds, warm=True)
    out: dict[str, Any] = {
        name: {
            "median_ms": round(statistics.median(values), 2),
            "p90_ms": round(float(np.percentile(values, 90)), 2),
            "min_ms": round(min(values), 2),
            "n": len(values),
            "cosine_to_torch": round(cosine[name], 7),
            "batch_ms_per_clip": round(best_batch_ms[name] / len(batch), 2),
            "batch_clips": len(batch),
        }
        for name, values in samples.items()
    }
    return {"timed": out, "skipped": skipped}


async def _misses(core: Any, clips: Sequence[bytes], in_flight: int) -> tuple[float, list[Any]]:
    """All `clips` as bypass misses, `in_flight` at a time: (wall seconds, results in order)."""
    from services.embedder.core import CacheOptions

    gate = asyncio.Semaphore(in_flight)

    async def one(wav: bytes) -> Any:
        async with gate:
            return await core.embed(audio=wav, options=CacheOptions(bypass=True))

    started = time.perf_counter()
    results = await asyncio.gather(*(one(wav) for wav in clips))
    return time.perf_counter() - started, list(results)


async def batching_series(encoder: Any, clips: Sequence[bytes], config: MissConfig) -> dict[str, Any]:
    """Misses/s at each level, unbatched vs batched (alternating rounds), and the vectors' agreement."""
    from services.embedder import server
    from services.embedder.cache.record import Keyring
    from services.embedder.metrics import EmbedderStats
    from services.embedder.settings import EmbedderSettings

    base = replace(EmbedderSettings(), redis_url="none", max_batch=config.max_batch, max_pending=1024)
    cores = {}
    for mode, window in (("unbatched", 0.0), ("batched", config.batch_window_ms)):
        settings = replace(base, batch_window_ms=window)
        cores[mode] = server.build_core(
            settings, {"ecapa": encoder}, None, ThreadPoolExecutor(1), EmbedderStats(), Keyring.parse("")
        )
    await _misses(cores["batched"], clips[:2], 2)  # warm both paths once (lazy allocations)
    await _misses(cores["unbatched"], clips[:2], 2)
    per_level: dict[str, Any] = {}
    vectors: dict[str, list[np.ndarray]] = {}
    for level in config.levels:
        rates: dict[str, list[float]] = {"unbatched": [], "batched": []}
        passes0 = cores["batched"].snapshot().forward_passes
        for _ in range(config.rounds):
            for mode, core in cores.items():
                wall, results = await _misses(core, clips, level)
                rates[mode].append(len(clips) / wall)
                vectors[mode] = [r.conditioning.tensors["speaker"] for r in results]
        passes = cores["batched"].snapshot().forward_passes - passes0
        unbatched, batched = statistics.median(rates["unbatched"]), statistics.median(rates["batched"])
        per_level[str(level)] = {
            "unbatched_per_s": round(unbatched, 2),
            "batched_per_s": round(batched, 2),
            "speedup": round(batched / unbatched, 3),
            "mean_batch": round(len(clips) * config.rounds / passes, 2),
            "rounds_per_s": {mode: [round(r, 2) for r in values] for mode, values in rates.items()},
        }
    cosine = min(float(a @ b) for a, b in zip(vectors["unbatched"], vectors["batched"], strict=True))
    for core in cores.values():
        await core.close()
    return {"per_level": per_level, "min_cosine": round(cosine, 7)}


def run(config: MissConfig, workdir: Path) -> dict[str, Any]:
    """Everything above, in one process; returns the "miss" results."""
    import torch

    started, load_before = time.perf_counter(), os.getloadavg()
    base = synthesize(SENTENCE, config.clip_s, workdir)
    clips = distinct_clips(base, config.misses)
    encoder = _encoder(config)
    choice = encoder.runtime
    clip = base.astype(np.float32) / 32768
    # One clip repeated: a pass's cost is its shape's, whatever the clips say.
    runtimes = time_runtimes(encoder, clip, config.runtime_rounds, [clip] * config.max_batch, config.batch_rounds)
    batching = asyncio.run(batching_series(encoder, clips, config))
    out: dict[str, Any] = {
        "device": encoder.device,
        "clip_s": config.clip_s,
        "sample_rate": SAMPLE_RATE,
        "choice": {
            "runtime": choice.name,
            "forced": choice.forced,
            "warmup_ms": dict(choice.timings_ms),
            "skipped": dict(choice.skipped),
        },
        "runtimes": runtimes["timed"],
        "runtimes_skipped": runtimes["skipped"],
        "levels": list(config.levels),
        "batching": batching["per_level"],
        "batched_min_cosine": batching["min_cosine"],
        "config": asdict(config),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out["targets"] = miss_targets(out)
    return out


def run_in_child(config: MissConfig, workdir: Path) -> dict[str, Any]:
    """`run` in a fresh spawned process: its model and threads never share the bench's own process."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(run, config, workdir).result()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.miss_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--quick", action="store_true", help="small counts: checks the harness, not the numbers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-window-ms", type=float, default=MissConfig.batch_window_ms)
    parser.add_argument("--max-batch", type=int, default=MissConfig.max_batch)
    parser.add_argument("--levels", default=None, help="misses in flight, comma-separated (default 1,4,16)")
    parser.add_argument("--misses", type=int, default=None, help="distinct misses per measurement (default 16)")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/miss[-cuda].json")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when any target is missed")
    args = parser.parse_args(argv)
    config = replace(
        MissConfig.quick() if args.quick else MissConfig(),
        device=args.device,
        threads=args.threads,
        batch_window_ms=args.batch_window_ms,
        max_batch=args.max_batch,
    )
    if args.levels:
        config = replace(config, levels=tuple(int(level) for level in args.levels.split(",")))
    if args.misses:
        config = replace(config, misses=args.misses)
    with tempfile.TemporaryDirectory(prefix="voxcache-miss-") as tmp:
        results = run(config, Path(tmp))
    out = args.out or RESULTS_DIR / ("miss.json" if args.device == "cpu" else "miss-cuda.json")
    write_json(out, results)
    print("\n".join(miss_lines(results)))
    for t in results["targets"].values():
        verdict = "info" if t.get("informational") else ("PASS" if t["pass"] else "FAIL")
        print(f"  {t['what']:<40}{t['value']:>10.4g}  {t['target']:<8}  {verdict}")
    print(f"\nwrote {shown(out)}")
    missed = [n for n, t in results["targets"].items() if not t["pass"] and not t.get("informational")]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
