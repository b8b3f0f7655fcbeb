"""Decoding and validation of reference audio, on real speech in every accepted encoding."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from scipy.signal import resample_poly

from services.common.errors import InvalidInput, TooLarge
from services.embedder import audio
from services.embedder.settings import EmbedderSettings
from tests.audio_fixtures import encode

LIMITS = EmbedderSettings().audio_limits


def at_rate(speech: dict[str, Any], rate: int) -> np.ndarray:
    return resample_poly(speech["samples"], rate, speech["rate"]).astype(np.float32)


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [
        ("WAV", "PCM_U8"),
        ("WAV", "PCM_16"),
        ("WAV", "PCM_24"),
        ("WAV", "PCM_32"),
        ("WAV", "FLOAT"),
        ("WAV", "DOUBLE"),
        ("FLAC", "PCM_16"),
        ("FLAC", "PCM_24"),
        ("OGG", "VORBIS"),
    ],
)
def test_every_sample_format_decodes_to_16k_mono(speech: dict[str, Any], fmt: str, subtype: str) -> None:
    data = encode(speech["samples"], speech["rate"], fmt, subtype)
    decoded = audio.decode(data, LIMITS)
    assert decoded.sample_rate == 16_000 and decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert decoded.source_format == fmt
    assert abs(len(decoded.samples) - 4.0 * 16_000) <= 16
    assert np.corrcoef(decoded.samples, audio.resample(speech["samples"], speech["rate"], 16_000))[0, 1] > 0.95


@pytest.mark.parametrize("rate", [8_000, 11_025, 16_000, 22_050, 44_100, 48_000, 96_000])
def test_sample_rates_8_to_96_khz(speech: dict[str, Any], rate: int) -> None:
    decoded = audio.decode(encode(at_rate(speech, rate), rate), LIMITS)
    assert decoded.source_rate == rate
    assert abs(len(decoded.samples) - 64_000) <= 16


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_downmixed(speech: dict[str, Any], channels: int) -> None:
    mono = speech["samples"]
    stacked = np.stack([mono * (0.5 + 0.1 * c) for c in range(channels)], axis=1)
    decoded = audio.decode(encode(stacked, speech["rate"]), LIMITS)
    assert decoded.source_channels == channels
    reference = audio.resample(mono, speech["rate"], 16_000) * np.mean([0.5 + 0.1 * c for c in range(channels)])
    assert np.allclose(decoded.samples, reference, atol=2e-3)


def rejects(data: bytes, error: type[Exception], match: str, limits: audio.AudioLimits = LIMITS) -> None:
    with pytest.raises(error, match=match) as caught:
        audio.decode(data, limits)
    assert caught.value.field == "audio"  # type: ignore[attr-defined]


def test_empty_and_not_audio(speech: dict[str, Any]) -> None:
    rejects(b"", InvalidInput, "empty")
    rejects(b"this is not audio at all" * 100, InvalidInput, "not a readable WAV, FLAC or OGG")
    rejects(speech["samples"].tobytes(), InvalidInput, "raw PCM")


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_files(speech: dict[str, Any], fmt: str, subtype: str, keep: float) -> None:
    data = encode(speech["samples"], speech["rate"], fmt, subtype)
    rejects(data[: int(len(data) * keep)], InvalidInput, "truncated")


def test_streamed_wav_with_placeholder_size_is_accepted(speech: dict[str, Any]) -> None:
    data = bytearray(encode(speech["samples"], speech["rate"]))
    data[40:44] = (0x7FFFF000).to_bytes(4, "little")  # espeak-ng --stdout writes this
    assert audio.decode(bytes(data), LIMITS).duration_s == pytest.approx(4.0)


def test_too_short_and_silent(speech: dict[str, Any]) -> None:
    rate = speech["rate"]
    rejects(encode(speech["samples"][: rate // 2], rate), InvalidInput, r"0\.50 s long; at least 1 s")
    rejects(encode(np.zeros(rate * 3, np.float32), rate), InvalidInput, "silent")
    rejects(encode(speech["samples"] * 1e-4, rate, subtype="FLOAT"), InvalidInput, "silent")


def test_a_clip_just_under_the_minimum_says_how_long_it_is(speech: dict[str, Any]) -> None:
    rate = speech["rate"]
    rejects(encode(speech["samples"][: int(rate * 0.999)], rate), InvalidInput, r"0\.999 s long; at least 1 s")


@pytest.mark.parametrize("peak", [1e18, 32767.0, 17.0])
def test_finite_but_huge_float_samples_are_refused(speech: dict[str, Any], peak: float) -> None:
    loud = speech["samples"] / np.abs(speech["samples"]).max() * peak
    rejects(encode(loud.astype(np.float32), speech["rate"], subtype="FLOAT"), InvalidInput, "full scale is ±1")


def test_float_samples_a_little_over_full_scale_are_accepted(speech: dict[str, Any]) -> None:
    hot = speech["samples"] / np.abs(speech["samples"]).max() * 1.5
    assert audio.decode(encode(hot.astype(np.float32), speech["rate"], subtype="FLOAT"), LIMITS).duration_s > 1


def test_nan_and_inf_samples(speech: dict[str, Any]) -> None:
    for bad in (np.nan, np.inf):
        samples = speech["samples"].copy()
        samples[1000] = bad
        rejects(encode(samples, speech["rate"], subtype="FLOAT"), InvalidInput, "NaN or infinite")


def test_too_long_and_too_big_are_resource_exhausted(speech: dict[str, Any]) -> None:
    rate = speech["rate"]
    long = np.tile(speech["samples"], 8)  # 32 s
    rejects(encode(long, rate), TooLarge, "32.0 s long; the limit is 30 s")
    small = replace(LIMITS, max_bytes=50_000)
    rejects(encode(speech["samples"], rate), TooLarge, "the limit is 50,000", small)


@pytest.mark.parametrize("rate", [4_000, 192_000])
def test_sample_rate_out_of_range(speech: dict[str, Any], rate: int) -> None:
    rejects(encode(at_rate(speech, rate), rate), InvalidInput, "outside 8000-96000 Hz")


def test_other_containers_are_refused_by_name(speech: dict[str, Any]) -> None:
    rejects(encode(speech["samples"], speech["rate"], "AIFF"), InvalidInput, "AIFF is not accepted")


def test_probe_duration_reads_only_the_header(speech: dict[str, Any]) -> None:
    assert audio.probe_duration(speech["wav"]) == pytest.approx(4.0)
    assert audio.probe_duration(b"junk") == 0.0
