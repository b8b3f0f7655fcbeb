"""What a hit's own Python costs when the CPU caches are warm, and when they are cold.

Why this exists: in the embedder bench a `voice_id` hit's p50 sits ~100 µs above its bare
echo, yet the same handler run back to back in one process takes ~10-15 µs. The difference is
where the code and data the handler touches live when a request arrives. Between two
sequential requests a server sits idle for a round trip, and on a shared machine (a VM here)
other work evicts it from the caches meanwhile; the handler then runs from main memory. This
bench measures both ends in one process, without gRPC, so the figure that decides the hit
targets can be seen and changed on its own:

* `hit`: Embed's deserializer (embed_request.read) and the servicer's Embed, as the server
  runs them for an L1 hit by `voice_id` and by upload (a real Embedder core, real ECAPA).
* `floor`: a handler that returns the hit's response bytes, as bench/floor.py's echo does.
* `warm`: calls back to back. `cold`: before each call a write sweep over a buffer twice the
  size of the last-level cache, so the call finds nothing of its own in any cache. That
  includes an upload's clip, which in a server has just arrived and is likely still cached:
  the cold upload figure overstates what hashing it costs there.

The extra of `hit` over `floor` in the `cold` column is the one to compare with the embedder
bench's latency gap (hit p50 minus echo p50); the `warm` column is what a profiler in a tight
loop sees. Writes bench/results/cold.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.clips import synthesize, wav_bytes
from bench.embedder_bench import SENTENCES, VOICE_ID
from bench.report import RESULTS_DIR, shown, write_json

log = logging.getLogger(__name__)

Call = Callable[[], Awaitable[bytes]]
#: The series, what they sent, and how to stop the Embedder they ran on.
Prepared = tuple[dict[str, Call], dict[str, int], Callable[[], Awaitable[None]]]


class _Context:
    """The one thing Embed asks of its gRPC context: the caller's deadline (none here)."""

    @staticmethod
    def time_remaining() -> float | None:
        return None


def last_level_cache_bytes() -> int:
    """The largest CPU cache Linux reports, or 32 MiB when it reports none."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KM")) * scale)
    return max(sizes, default=32 << 20)


async def measure(calls: dict[str, Call], samples: int, block: int, sweep: np.ndarray | None) -> dict[str, list[float]]:
    """µs per call of each series, in alternating blocks; with `sweep`, every call follows a sweep."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_index in range(0, samples, block):
        for name in names if (round_index // block) % 2 == 0 else reversed(names):
            call = calls[name]
            for _ in range(block):
                await asyncio.sleep(0)  # lets the Embedder's own background tasks run, off the clock
                if sweep is not None:
                    np.add(sweep, 1, out=sweep)  # writes every cache line of a buffer larger than the caches
                started = time.perf_counter_ns()
                await call()
                out[name].append((time.perf_counter_ns() - started) / 1000)
    return out


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {"n": len(samples), "p50_us": round(statistics.median(samples), 2), "min_us": round(min(samples), 2)}


async def _series(workdir: Path, redis_url: str) -> Prepared:
    """The hit and floor handlers for a `voice_id` and an upload request, on a started core."""
    from services.embedder import embed_request, server
    from services.embedder import settings as settings_mod
    from services.embedder.servicer import EmbedderServicer
    from voxcache.v1 import embedder_pb2 as pb

    clip = wav_bytes(synthesize(SENTENCES[0], 5.0, workdir))
    running = await server.start(settings_mod.parse(["--port", "0", "--metrics-port", "0", "--redis-url", redis_url]))
    await running.core.register_voice(VOICE_ID, clip)
    servicer, context = EmbedderServicer(running.core), _Context()
    requests = {
        "voice_id": pb.EmbedRequest(voice_id=VOICE_ID).SerializeToString(),
        "upload": pb.EmbedRequest(audio=clip).SerializeToString(),
    }
    calls: dict[str, Call] = {}
    for kind, request in requests.items():
        response = await servicer.Embed(embed_request.read(request), context)  # type: ignore[arg-type]
        if pb.EmbedResponse.FromString(response).tier != pb.CACHE_TIER_LOCAL:
            raise RuntimeError(f"the {kind} request was not an L1 hit")

        async def hit(request: bytes = request) -> bytes:
            return await servicer.Embed(embed_request.read(request), context)  # type: ignore[arg-type]

        async def floor(response: bytes = response) -> bytes:
            return response

        calls[f"hit_{kind}"], calls[f"floor_{kind}"] = hit, floor
    sizes = {f"{kind}_request_bytes": len(request) for kind, request in requests.items()}
    return calls, sizes, running.stop


def run(samples: int, block: int) -> dict[str, Any]:
    from services.common.redis_server import LocalRedis

    llc = last_level_cache_bytes()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory(prefix="voxcache-cold-") as tmp, LocalRedis() as redis:
        calls, sizes, stop = loop.run_until_complete(_series(Path(tmp), redis.url))
        try:
            sweep = np.ones(2 * llc, dtype=np.uint8)
            results: dict[str, Any] = {}
            for condition, buffer in (("warm", None), ("cold", sweep)):
                log.info("%s: %d calls per series", condition, samples)
                measured = loop.run_until_complete(measure(calls, samples, block, buffer))
                results[condition] = {name: summary(values) for name, values in measured.items()}
        finally:
            loop.run_until_complete(stop())
            loop.close()
    extra = {
        condition: {
            kind: round(results[condition][f"hit_{kind}"]["p50_us"] - results[condition][f"floor_{kind}"]["p50_us"], 1)
            for kind in ("voice_id", "upload")
        }
        for condition in ("warm", "cold")
    }
    return {
        "series_us": results,
        "hit_extra_over_floor_p50_us": extra,
        "sizes": sizes,
        "config": {"samples": samples, "block": block, "sweep_bytes": 2 * llc, "last_level_cache_bytes": llc},
    }


def table(results: dict[str, Any]) -> str:
    lines = [f"{'series':16s} {'warm p50 us':>12s} {'cold p50 us':>12s}"]
    warm, cold = results["series_us"]["warm"], results["series_us"]["cold"]
    for name in warm:
        lines.append(f"{name:16s} {warm[name]['p50_us']:12.1f} {cold[name]['p50_us']:12.1f}")
    extra = results["hit_extra_over_floor_p50_us"]
    for kind in ("voice_id", "upload"):
        lines.append(f"hit - floor, {kind:8s} {extra['warm'][kind]:8.1f} {extra['cold'][kind]:12.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000, help="calls per series and condition (default 2000)")
    parser.add_argument("--block", type=int, default=50, help="calls per block before the next series (default 50)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "cold.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    results = run(args.samples, args.block)
    path = write_json(args.out, results)
    print(table(results))
    print(f"\nwrote {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
