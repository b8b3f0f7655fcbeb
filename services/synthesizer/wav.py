"""Output encoding: float samples -> 16-bit PCM, and the one WAV header writer.

Chunks are converted independently and concatenated, so the streamed PCM is
byte-identical to the unary PCM; the header is computed from the final length.
"""

from __future__ import annotations

import struct

import numpy as np


def to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(np.nan_to_num(samples, nan=0.0), -1.0, 1.0)
    return np.round(clipped * 32767.0).astype("<i2").tobytes()


def wav_header(data_bytes: int, sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """Canonical 44-byte RIFF/WAVE header for PCM data of the given size."""
    block = channels * bits // 8
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        sample_rate * block,
        block,
        bits,
        b"data",
        data_bytes,
    )
