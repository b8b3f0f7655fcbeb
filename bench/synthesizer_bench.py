"""Synthesizer on the seed's workload: end-to-end latency with the Embedder's cache vs without.

One command (`.venv/bin/python -m bench.synthesizer_bench`), one process tree:
a private redis-server, two Embedders (one caching as deployed, one with its
cache switched off: no Redis, a 0-byte in-process cache) and a Synthesizer in
front of each, every service its own process. The same request sequence (80 %
reuse one reference clip, 20 % are clips never seen before) is sent to both
stacks, sequentially from this process. Results go to
bench/results/synthesizer.json and are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.clips import distinct_clips, synthesize
from bench.harness import ratio, summarize
from bench.report import RESULTS_DIR, write_json
from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis, free_port
from services.launcher import wait_serving
from voxcache import SynthesizerClient

TEXT = "Every worker shares what it learns about a voice."
REFERENCE_TEXT = "The quick brown fox jumps over the lazy dog near the quiet river bank, twice a day."


class Tree:
    """Service processes started in order and stopped in reverse."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, module: str, service: str, *args: str) -> str:
        port = free_port()
        env = {**os.environ, "VOXCACHE_LOG_LEVEL": "WARNING"}
        process = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), *args], env=env, cwd=REPO_ROOT)
        self.processes.append(process)
        wait_serving(f"127.0.0.1:{port}", service, process)
        return f"127.0.0.1:{port}"

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            process.wait(30)


def workload(requests: int, seed: int, workdir: Path) -> list[bytes]:
    """80 % one clip, 20 % distinct clips never seen before, in a fixed shuffled order."""
    reused = distinct_clips(synthesize(REFERENCE_TEXT, 5.0, workdir, voice="en-gb"), 1)[0]
    unique = distinct_clips(synthesize(REFERENCE_TEXT, 5.0, workdir), requests // 5)
    sequence = unique + [reused] * (requests - len(unique))
    random.Random(seed).shuffle(sequence)
    return sequence


def run_stack(target: str, sequence: Sequence[bytes], warmup: bytes) -> dict[str, Any]:
    totals, embeds, hits = [], [], 0
    with SynthesizerClient(target, timeout=300) as client:
        client.say(TEXT, voice=warmup)  # bundled-voice set-up and first-call costs stay out of the figures
        for clip in sequence:
            started = time.perf_counter()
            speech = client.say(TEXT, voice=clip)
            totals.append(time.perf_counter() - started)
            embeds.append(speech.timings_ms["embed"] / 1000)
            hits += speech.conditioning_cache_hit
    return {
        "end_to_end": summarize(totals),
        "conditioning": summarize(embeds),
        "conditioning_share": round(sum(embeds) / sum(totals), 4),
        "cache_hits": hits,
        "requests": len(sequence),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    tree = Tree()
    with tempfile.TemporaryDirectory() as tmp, LocalRedis() as redis:
        sequence = workload(args.requests, args.seed, Path(tmp))
        warmup = distinct_clips(synthesize("Warm up.", 2.0, Path(tmp), voice="en-us+f3"), 1)[0]
        try:
            cached_embedder = tree.spawn(
                "services.embedder.server", "voxcache.v1.Embedder", "--metrics-port", "0", "--redis-url", redis.url
            )
            bare_embedder = tree.spawn(
                "services.embedder.server", "voxcache.v1.Embedder", "--metrics-port", "0",
                "--redis-url", "none", "--local-cache-mb", "0",
            )  # fmt: skip
            cached = tree.spawn(
                "services.synthesizer.server", "voxcache.v1.Synthesizer", "--embedder-address", cached_embedder
            )
            bare = tree.spawn(
                "services.synthesizer.server", "voxcache.v1.Synthesizer", "--embedder-address", bare_embedder
            )
            results = {
                "with_cache": run_stack(cached, sequence, warmup),
                "cache_bypassed": run_stack(bare, sequence, warmup),
            }
        finally:
            tree.stop()
    with_cache, bypassed = results["with_cache"]["end_to_end"], results["cache_bypassed"]["end_to_end"]
    results["speedup"] = {
        "p50": ratio(bypassed["p50_ms"], with_cache["p50_ms"]),
        "p95": ratio(bypassed["p95_ms"], with_cache["p95_ms"]),
    }
    results["workload"] = {"requests": args.requests, "reuse_share": 0.8, "text": TEXT, "backend": "kokoro"}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    json_path = write_json(RESULTS_DIR / "synthesizer.json", results)

    print(f"Synthesizer, seed workload: {args.requests} requests, 80 % one voice, kokoro, {os.cpu_count()} CPUs")
    print(f"{'':16}{'p50 ms':>10}{'p95 ms':>10}{'cond. p50':>11}{'cond. share':>13}{'hits':>6}")
    for name in ("with_cache", "cache_bypassed"):
        r = results[name]
        print(
            f"{name:16}{r['end_to_end']['p50_ms']:10.1f}{r['end_to_end']['p95_ms']:10.1f}"
            f"{r['conditioning']['p50_ms']:11.1f}{r['conditioning_share']:13.1%}{r['cache_hits']:6d}"
        )
    print(f"speed-up with the cache: p50 {results['speedup']['p50']:.2f}x, p95 {results['speedup']['p95']:.2f}x")
    print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
