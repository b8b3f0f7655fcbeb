"""Test clips: espeak-ng speech at 16 kHz 16-bit mono, fixed length, as WAV bytes.

Real speech rather than noise, because the Embedder rejects silence and the model's
cost depends on the clip's length, not its content. Resampling goes through the
Embedder's own `resample`, so a clip reaches the model exactly as the service itself
would have prepared it from a 22.05 kHz upload.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from services.embedder.audio import resample

SAMPLE_RATE = 16_000


def synthesize(text: str, seconds: float, workdir: Path, voice: str = "en-us") -> np.ndarray:
    """Speech as int16 at 16 kHz, trimmed or zero-padded to exactly `seconds`.

    espeak-ng writes 22.05 kHz; a fixed length keeps every request the same size and
    every forward pass the same shape, so samples are comparable.
    """
    path = workdir / f"espeak-{hashlib.sha1(f'{voice}:{text}'.encode()).hexdigest()[:12]}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, timeout=60, capture_output=True)
    raw, rate = sf.read(path, dtype="float32", always_2d=True)
    resampled = resample(raw.mean(axis=1), rate, SAMPLE_RATE)
    n = round(seconds * SAMPLE_RATE)
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(resampled))] = resampled[:n]
    return np.clip(np.round(out * 32767), -32768, 32767).astype(np.int16)


def wav_bytes(samples: np.ndarray) -> bytes:
    """16-bit PCM WAV: the format a client most often uploads, and the cheapest to decode."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def distinct_clips(base: np.ndarray, count: int) -> list[bytes]:
    """`count` WAVs of the same speech at slightly different gains: distinct sha256, same size.

    Distinct bytes is what makes a clip a separate cache entry; the gain steps are large
    enough that no two clips quantise to the same int16 samples (checked).
    """
    clips = [
        wav_bytes((base.astype(np.float32) * (1.0 - 0.002 * (i + 1))).round().astype(np.int16)) for i in range(count)
    ]
    if len(set(clips)) != count:
        raise RuntimeError("distinct_clips produced duplicate audio")
    return clips
