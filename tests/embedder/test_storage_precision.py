"""ECAPA's default storage: values rounded to float16, stored in half the bytes, served as float32."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from services.common.redis_server import LocalRedis
from services.embedder.cache.tiered import CacheTier
from services.embedder.encoders import ecapa
from services.embedder.encoders.storage import Float16Rounded
from services.embedder.settings import EmbedderSettings
from tests.conftest import CountingEncoder, make_core, raw_client


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


async def test_rounded_vectors_are_half_the_bytes_in_redis_and_identical_on_every_tier(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any], other_speech: bytes
) -> None:
    rounded = Float16Rounded(encoder)
    first_worker = make_core(rounded, redis_server.url, prefix)
    second_worker = make_core(rounded, redis_server.url, prefix)
    raw = raw_client(redis_server.url)
    try:
        for clip in (speech["wav"], other_speech):
            miss = await first_worker.embed(audio=clip)
            exact = encoder.inner.encode(
                np.asarray(encoder.last_samples, dtype=np.float32)  # the very samples the model saw
            )["speaker"]
            served = miss.conditioning.tensors["speaker"]
            assert served.dtype == np.float32 and served.shape == (192,)
            assert cosine(served, exact) >= 0.9999
            assert np.array_equal(served.astype(np.float16).astype(np.float32), served)
            assert len(raw.get(miss.conditioning.cache_key)) == 438  # float16 on disk (822 as float32)
            hit = await second_worker.embed(audio=clip)
            assert hit.tier is CacheTier.REDIS
            assert hit.conditioning.tensors["speaker"].tobytes() == served.tobytes()
    finally:
        await first_worker.close()
        await second_worker.close()


async def test_rounded_and_exact_entries_never_share_a_key(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    exact_core = make_core(encoder, redis_server.url, prefix)
    rounded_core = make_core(Float16Rounded(encoder), redis_server.url, prefix)
    try:
        exact = await exact_core.embed(audio=speech["wav"])
        rounded = await rounded_core.embed(audio=speech["wav"])
        assert rounded.conditioning.cache_key != exact.conditioning.cache_key and not rounded.cache_hit
    finally:
        await exact_core.close()
        await rounded_core.close()


def test_ecapa_is_rounded_by_default_and_exact_on_request() -> None:
    settings = replace(EmbedderSettings(), device="cpu", threads=1)
    assert isinstance(ecapa.from_settings(settings), Float16Rounded)
    assert isinstance(ecapa.from_settings(replace(settings, ecapa_float16=False)), ecapa.EcapaEncoder)
