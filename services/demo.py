"""The main job, end to end: Redis + Embedder + Synthesizer, then speech in a cloned-ish voice.

`make demo` runs this. Every service runs as its own process, exactly as
deployed; this script is only their client. It embeds the bundled reference
clip twice (a miss: decode + ECAPA; then a hit: hash + cache, no decoding), then
asks the Synthesizer to speak text in the voice nearest to that reference and
writes the WAV.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import redis

from services.common.paths import REPO_ROOT
from services.launcher import Stack
from voxcache import EmbedderClient, SynthesizerClient

SAMPLE = REPO_ROOT / "samples" / "reference_en.wav"
TEXT = (
    "Hello! This sentence was spoken by voxcache. "
    "The voice was chosen from a reference clip, whose speaker embedding is now cached in Redis."
)


def run(reference: Path, text: str, output: Path) -> None:
    audio = reference.read_bytes()
    started = time.perf_counter()
    with Stack() as stack:
        assert stack.redis is not None
        print(
            f"up in {time.perf_counter() - started:.1f}s: redis-server 127.0.0.1:{stack.redis.port}, "
            f"Embedder {stack.embedder}, Synthesizer {stack.synthesizer}"
        )
        print(f"reference clip  {reference} ({len(audio):,} bytes)\n")
        with EmbedderClient(stack.embedder, timeout=60) as embedder:
            rtts = []
            for attempt in ("1st", "2nd"):
                t0 = time.perf_counter()
                result = embedder.embed(audio)
                rtts.append((time.perf_counter() - t0) * 1000)
                server = ", ".join(f"{k} {v:.2f} ms" for k, v in result.timings_ms.items())
                print(
                    f"{attempt} Embed  {'HIT ' if result.cache_hit else 'MISS'} ({result.tier:8}) "
                    f"round trip {rtts[-1]:8.2f} ms   server: {server}"
                )
            stored = redis.Redis.from_url(stack.redis.url, password=stack.redis.password).get(result.cache_key)
            print(
                f"hit is {rtts[0] / rtts[1]:,.0f}x faster than the miss; speaker vector {result.speaker.dtype}"
                f"{result.speaker.shape}, stored in Redis as a {len(stored or b'')}-byte record\n"
            )
        with SynthesizerClient(stack.synthesizer, timeout=300) as synthesizer:
            speech = synthesizer.say(text, voice=audio)
            speech.save(output)
        timings = ", ".join(f"{k} {v:.0f} ms" for k, v in speech.timings_ms.items())
        print(f"Synthesize      {speech.duration_s:.2f} s of speech at {speech.sample_rate} Hz -> {output}")
        print(
            f"                {speech.backend} voice {speech.backend_voice!r} (ECAPA cosine to the reference "
            f"{speech.similarity:.3f}; kokoro picks a bundled voice, it does not clone)"
        )
        print(
            f"                conditioning {'HIT' if speech.conditioning_cache_hit else 'MISS'} "
            f"in the Embedder's cache; {timings}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", type=Path, default=SAMPLE, help="reference clip (WAV/FLAC/OGG, 1-30 s)")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("-o", "--output", type=Path, default=REPO_ROOT / "out.wav")
    args = parser.parse_args()
    run(args.reference.resolve(), args.text, args.output.resolve())


if __name__ == "__main__":
    main()
