"""Clone quality of the Kokoro backend (SIM), framed by the same measure on a same-voice ceiling and a
different-voice floor, and what asking for the score costs.

One command (`.venv/bin/python -m bench.similarity_bench`), one process: a private redis-server, a
real Embedder (ECAPA) and Synthesizer (Kokoro) on loopback. Every figure is the Embedder's
ScoreSpeaker cosine against the bundled reference (samples/reference_en.wav, espeak-ng
`en-us+f3 -s 150`):

- kokoro: the Synthesizer speaking each bench text with `score_similarity`, the voice it picks;
- kokoro per bundled voice: one text, each of the five packs forced (the best Kokoro can do here);
- ceiling: espeak-ng with the reference's own voice and rate speaking the same texts (what a
  perfect clone of this reference would score with ECAPA);
- floor: espeak-ng's default male `en-us` speaking them (another voice entirely);
- cost: the same unary request with and without `score_similarity`, interleaved, medians.

Results go to bench/results/similarity.json and are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc

from bench.report import RESULTS_DIR, write_json
from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis
from services.embedder import server as embedder_server
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.settings import SynthesizerSettings
from voxcache import AsyncSynthesizerClient
from voxcache.v1 import embedder_pb2, embedder_pb2_grpc

REFERENCE = REPO_ROOT / "samples" / "reference_en.wav"
TEXTS = (
    "The birch canoe slid on the smooth planks beside the quiet harbour.",
    "Glue the sheet to the dark blue background before the paint dries.",
    "It is easy to tell the depth of a well when you drop a small stone.",
    "Four hours of steady work faced us, and nobody complained at all.",
    "A large size in stockings is hard to sell in the middle of summer.",
    "The boy was there when the sun rose over the hills to the east.",
)
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")


def espeak(text: str, voice: str, workdir: Path, rate_wpm: int = 150) -> bytes:
    path = workdir / f"{voice}-{abs(hash(text))}.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate_wpm), "-w", str(path), text], check=True, capture_output=True
    )
    return path.read_bytes()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


async def run(repeats: int) -> dict[str, Any]:
    reference = REFERENCE.read_bytes()
    with LocalRedis() as redis, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        embedder = await embedder_server.start(
            replace(EmbedderSettings(), port=0, metrics_port=0, redis_url=redis.url, cache_prefix="simbench")
        )
        synthesizer = await synthesizer_server.start(
            replace(SynthesizerSettings(), port=0, embedder_address=f"127.0.0.1:{embedder.port}")
        )
        try:
            await synthesizer.warm_up
            async with AsyncSynthesizerClient(f"127.0.0.1:{synthesizer.port}", timeout=300) as synth:
                kokoro, picked = [], set()
                for text in TEXTS:
                    said = await synth.say(text, voice=reference, score=True)
                    assert said.speaker_similarity is not None, said.speaker_similarity_error
                    kokoro.append(said.speaker_similarity)
                    picked.add(said.backend_voice)
                per_voice = {}
                for voice in KOKORO_VOICES:
                    said = await synth.say(TEXTS[0], voice=reference, options={"voice": voice}, score=True)
                    assert said.speaker_similarity is not None, said.speaker_similarity_error
                    per_voice[voice] = round(said.speaker_similarity, 4)
                plain_ms, scored_ms = [], []
                for _ in range(repeats):
                    for scored, out in ((False, plain_ms), (True, scored_ms)):
                        started = time.perf_counter()
                        await synth.say(TEXTS[1], voice=reference, score=scored)
                        out.append((time.perf_counter() - started) * 1000)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{embedder.port}") as channel:
                stub = embedder_pb2_grpc.EmbedderStub(channel)

                async def score(audio: bytes, label: str) -> float:
                    request = embedder_pb2.ScoreSpeakerRequest(audio=audio, reference_audio=reference, backend=label)
                    return (await stub.ScoreSpeaker(request)).speaker_similarity

                ceiling = [await score(espeak(t, "en-us+f3", workdir), "espeak-same-voice") for t in TEXTS]
                floor = [await score(espeak(t, "en-us", workdir), "espeak-other-voice") for t in TEXTS]
                stats = await stub.GetStats(embedder_pb2.GetStatsRequest())
        finally:
            await synthesizer.stop()
            await embedder.stop()
    return {
        "reference": str(REFERENCE.relative_to(REPO_ROOT)),
        "measure": "cosine of SpeechBrain ECAPA-TDNN (spkrec-ecapa-voxceleb) embeddings, Embedder.ScoreSpeaker",
        "texts": len(TEXTS),
        "kokoro": {**summary(kokoro), "voices_picked": sorted(picked)},
        "kokoro_per_voice": per_voice,
        "ceiling_same_voice_espeak": summary(ceiling),
        "floor_other_voice_espeak": summary(floor),
        "getstats_p50": {label: round(s.p50, 4) for label, s in stats.speaker_similarity.items()},
        "cost_ms": {
            "text": TEXTS[1],
            "repeats": repeats,
            "unscored_median": round(statistics.median(plain_ms), 1),
            "scored_median": round(statistics.median(scored_ms), 1),
            "added_median": round(statistics.median(scored_ms) - statistics.median(plain_ms), 1),
        },
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="requests per arm for the cost figure")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "similarity.json")
    args = parser.parse_args()
    results = asyncio.run(run(args.repeats))
    write_json(args.out, results)
    k, c, f = results["kokoro"], results["ceiling_same_voice_espeak"], results["floor_other_voice_espeak"]
    print(f"reference: {results['reference']}  ({results['measure']})")
    print(f"{'':34}{'median':>8}{'min':>8}{'max':>8}")
    for label, s in (("kokoro (voice it picks)", k), ("ceiling: same voice (espeak f3)", c), ("floor: other voice", f)):
        print(f"{label:34}{s['median']:8.3f}{s['min']:8.3f}{s['max']:8.3f}")
    print("kokoro per bundled voice: " + ", ".join(f"{v} {s:.3f}" for v, s in results["kokoro_per_voice"].items()))
    cost = results["cost_ms"]
    print(
        f"cost: {cost['unscored_median']:.0f} ms unscored vs {cost['scored_median']:.0f} ms scored "
        f"(+{cost['added_median']:.0f} ms, median of {cost['repeats']})"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
