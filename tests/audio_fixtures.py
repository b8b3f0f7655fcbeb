"""Real speech for tests: espeak-ng voices rendered to WAV, then re-encoded as needed."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import soundfile as sf

SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the quiet river bank.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "A rainbow is a division of white light into many beautiful colours.",
)


def espeak(text: str, voice: str = "en-us", rate_wpm: int = 160) -> tuple[np.ndarray, int]:
    """(float32 samples, sample rate) of espeak-ng speaking `text`."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is missing: run scripts/setup.sh")
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate_wpm), "--stdout", text], capture_output=True, check=True
    ).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return samples, rate


def encode(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def fit_duration(samples: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    """Trim or loop speech to an exact length."""
    n = int(rate * seconds)
    reps = -(-n // len(samples))
    return np.tile(samples, (reps,) + (1,) * (samples.ndim - 1))[:n]
