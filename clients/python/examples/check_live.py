"""Use the SDK against live services and check what comes back (run by CI in a fresh venv).

    python check_live.py EMBEDDER SYNTHESIZER REFERENCE.wav

Over TLS when VOXCACHE_TLS_CA is set (mTLS with VOXCACHE_TLS_CLIENT_CERT/_KEY too).

Exits non-zero unless: the speaker vector has 192 float32 values, the second Embed
is a cache hit, and Synthesize returns a WAV whose RIFF header matches its length.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from voxcache import TLS, EmbedderClient, SynthesizerClient


def main(embedder: str, synthesizer: str, reference: Path) -> int:
    failures = []
    audio = reference.read_bytes()
    with EmbedderClient(embedder, tls=TLS.from_env()) as client:
        first = client.embed(audio)
        second = client.embed(audio)
    if first.speaker.shape != (192,) or first.speaker.dtype.name != "float32":
        failures.append(f"speaker vector is {first.speaker.dtype}{first.speaker.shape}, expected float32 (192,)")
    if not second.cache_hit:
        failures.append("second Embed was not a cache hit")
    with SynthesizerClient(synthesizer, tls=TLS.from_env()) as client:
        speech = client.say("The Python SDK works from a fresh virtual environment.", voice=audio)
    wav = speech.audio
    riff_ok = wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and struct.unpack_from("<I", wav, 4)[0] == len(wav) - 8
    data_ok = wav[36:40] == b"data" and struct.unpack_from("<I", wav, 40)[0] == len(wav) - 44
    if not (riff_ok and data_ok):
        failures.append("Synthesize did not return a valid WAV")
    print(
        f"python sdk: vector {first.speaker.shape[0]}, second call hit={second.cache_hit}, "
        f"wav {len(wav):,} bytes, {speech.duration_s:.2f} s at {speech.sample_rate} Hz"
    )
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
