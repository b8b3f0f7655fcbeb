"""Reference-audio decoding and validation: bytes in, 16 kHz mono float32 out.

Pure functions over numpy/libsndfile. Every way a clip can be unusable maps to a
precise InvalidInput/TooLarge naming the `audio` field, and cheap checks (size,
header, duration) run before the expensive ones (decode, resample).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, replace
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from services.common.errors import InvalidInput, TooLarge

#: Streaming writers (espeak-ng --stdout, ffmpeg to a pipe) put ~2-4 GiB placeholders in the size fields.
_STREAMED_SIZE = 0x7FFF0000
ACCEPTED_FORMATS = {"WAV": "WAV", "WAVEX": "WAV", "RF64": "WAV", "FLAC": "FLAC", "OGG": "OGG"}


@dataclass(frozen=True)
class AudioLimits:
    """What a clip must satisfy. The two configurable limits come from EmbedderSettings;
    the rest are properties of a usable speaker reference, not deployment choices."""

    max_bytes: int
    max_duration_s: float
    min_duration_s: float = 1.0
    min_rate_hz: int = 8_000
    max_rate_hz: int = 96_000
    #: Clips whose RMS is below this level are treated as silence.
    silence_dbfs: float = -60.0
    #: Full scale is ±1; float files may run a little hot, but samples beyond this are not
    #: audio (a common mistake: PCM integers stored in a float WAV) and poison the model.
    max_peak: float = 16.0


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, mono, at `sample_rate`
    sample_rate: int
    source_rate: int
    source_channels: int
    source_format: str
    duration_s: float


def check_size(data: bytes | memoryview, limits: AudioLimits, field: str = "audio") -> None:
    """The checks a cache hit still needs: they do not look inside the bytes."""
    if not data:
        raise InvalidInput(
            f"audio is empty: send WAV, FLAC or OGG bytes of {limits.min_duration_s:g}-{limits.max_duration_s:g} s "
            "of speech",
            field=field,
        )
    if len(data) > limits.max_bytes:
        raise TooLarge(f"audio is {len(data):,} bytes; the limit is {limits.max_bytes:,}", field=field)


def _check_wav_truncation(data: bytes, field: str) -> None:
    """libsndfile silently plays a cut-off WAV; compare the data chunk's declared size instead."""
    if data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        return
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I" if data[:4] == b"RIFF" else ">I", data, offset + 4)
        if chunk_id == b"data":
            if size == 0 or size >= _STREAMED_SIZE:  # placeholder of a streaming writer: nothing to compare
                return
            available = len(data) - offset - 8
            if size > available:
                raise InvalidInput(
                    f"WAV file is truncated: its data chunk declares {size:,} bytes but only {available:,} are present",
                    field=field,
                )
            return
        offset += 8 + size + (size & 1)
    raise InvalidInput("WAV file is truncated: no data chunk found", field=field)


def _check_ogg_truncation(data: bytes, field: str) -> None:
    """A cut Ogg stream decodes cleanly up to the cut; walk the pages and require end-of-stream."""
    offset, last_flags = 0, 0
    while offset < len(data):
        if data[offset : offset + 4] != b"OggS" or offset + 27 > len(data):
            raise InvalidInput(f"OGG file is truncated or corrupt at byte {offset:,}", field=field)
        segments = data[offset + 26]
        table = data[offset + 27 : offset + 27 + segments]
        end = offset + 27 + segments + sum(table)
        if len(table) < segments or end > len(data):
            raise InvalidInput(f"OGG file is truncated: its last page is cut at byte {len(data):,}", field=field)
        last_flags = data[offset + 5]
        offset = end
    if not last_flags & 0x04:
        raise InvalidInput("OGG file is truncated: the stream has no end-of-stream page", field=field)


def decode(data: bytes, limits: AudioLimits, *, target_rate: int = 16_000, field: str = "audio") -> DecodedAudio:
    """The clip checked, downmixed and resampled to `target_rate`: what an encoder is given."""
    return at_rate(read(data, limits, field=field), target_rate)


def read(data: bytes, limits: AudioLimits, *, field: str = "audio") -> DecodedAudio:
    """The clip checked and downmixed to mono float32 at its own rate, not yet resampled.

    These samples are the clip's canonical PCM (keys.pcm_digest): libsndfile scales every
    integer width to ±1 exactly (16-bit v and 24-bit v<<8 give the same float32), and the
    container (WAV, WAVEX, FLAC, extra chunks) leaves no trace in them.
    """
    check_size(data, limits, field)
    try:
        handle = sf.SoundFile(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        reason = getattr(exc, "error_string", "") or type(exc).__name__
        raise InvalidInput(
            f"audio is not a readable WAV, FLAC or OGG file (libsndfile: {reason}); send a complete file, not raw PCM",
            field=field,
        ) from exc
    with handle:
        kind = ACCEPTED_FORMATS.get(handle.format)
        if kind is None:
            raise InvalidInput(f"audio format {handle.format} is not accepted; use WAV, FLAC or OGG", field=field)
        if kind == "WAV":
            _check_wav_truncation(data, field)
        elif kind == "OGG":
            _check_ogg_truncation(data, field)
        rate, channels, frames = handle.samplerate, handle.channels, handle.frames
        if not limits.min_rate_hz <= rate <= limits.max_rate_hz:
            raise InvalidInput(
                f"sample rate {rate} Hz is outside {limits.min_rate_hz}-{limits.max_rate_hz} Hz", field=field
            )
        if frames > limits.max_duration_s * rate:
            raise TooLarge(
                f"audio is {frames / rate:.1f} s long; the limit is {limits.max_duration_s:g} s", field=field
            )
        try:
            samples = handle.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            reason = getattr(exc, "error_string", "") or str(exc)
            raise InvalidInput(f"audio is corrupt or truncated (libsndfile: {reason})", field=field) from exc
    if kind != "WAV" and 0 < frames != len(samples):
        raise InvalidInput(
            f"{kind} file is truncated: header promises {frames} frames, {len(samples)} decoded", field=field
        )
    duration = len(samples) / rate
    if duration > limits.max_duration_s:
        raise TooLarge(f"audio is {duration:.1f} s long; the limit is {limits.max_duration_s:g} s", field=field)
    if duration < limits.min_duration_s:
        raise InvalidInput(
            f"audio is {_seconds(duration, limits.min_duration_s)} s long; "
            f"at least {limits.min_duration_s:g} s of speech is needed",
            field=field,
        )
    if not np.isfinite(samples).all():
        raise InvalidInput("audio contains NaN or infinite samples", field=field)
    peak = float(np.abs(samples).max(initial=0.0))
    if peak > limits.max_peak:
        raise InvalidInput(
            f"audio samples reach {peak:.3g}; full scale is ±1 (at most ±{limits.max_peak:g} is accepted): "
            "scale float samples to ±1",
            field=field,
        )
    mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
    if rms <= 10 ** (limits.silence_dbfs / 20):
        level = "-inf" if rms == 0 else f"{20 * np.log10(rms):.0f}"
        raise InvalidInput(f"audio is silent (RMS {level} dBFS, threshold {limits.silence_dbfs:g} dBFS)", field=field)
    return DecodedAudio(
        samples=np.ascontiguousarray(mono, dtype=np.float32),
        sample_rate=rate,
        source_rate=rate,
        source_channels=channels,
        source_format=kind,
        duration_s=duration,
    )


def at_rate(decoded: DecodedAudio, target_rate: int) -> DecodedAudio:
    """`decoded` resampled to `target_rate` (itself when it is already there)."""
    if decoded.sample_rate == target_rate:
        return decoded
    return replace(
        decoded, samples=resample(decoded.samples, decoded.sample_rate, target_rate), sample_rate=target_rate
    )


def _seconds(duration: float, limit: float) -> str:
    """The duration with enough decimals that it visibly differs from the limit (0.999, not 1.00)."""
    for decimals in range(2, 7):
        text = f"{duration:.{decimals}f}"
        if float(text) != limit:
            return text
    return repr(duration)


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (Kaiser window): exact rational ratio, no FFT wrap-around."""
    if rate == target_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    g = gcd(rate, target_rate)
    return resample_poly(samples, target_rate // g, rate // g).astype(np.float32)


def probe_duration(data: bytes) -> float:
    """Duration from the header alone (no sample decoding); 0.0 when unknown."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return 0.0
    return info.frames / info.samplerate if info.samplerate else 0.0
