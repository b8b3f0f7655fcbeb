"""Shared real parts: one private redis-server, the real ECAPA weights, espeak-ng speech.

Each test gets its own key prefix, so tests share the Redis process without
sharing data. Servers run in-process on loopback ports picked by the OS.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import torch

from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis
from services.embedder import server as embedder_server
from services.embedder.cache.redis_store import RedisStore
from services.embedder.core import Embedder
from services.embedder.encoders.ecapa import EcapaEncoder
from services.embedder.metrics import EmbedderStats
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.backends.kokoro import KokoroBackend
from services.synthesizer.settings import SynthesizerSettings
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as redis:
        yield redis


@pytest.fixture(scope="session")
def ecapa() -> EcapaEncoder:
    return EcapaEncoder(REPO_ROOT / "models" / "ecapa", device="cpu", threads=2)


class CountingEncoder:
    """The real encoder with a call counter (a spy, not a mock) and an optional hold-up."""

    def __init__(self, inner: EcapaEncoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.weights_digest = inner.weights_digest
        self.calls = 0
        self.before: Callable[[], None] | None = None

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.before is not None:
            self.before()
        return self.inner.encode(samples)


@pytest.fixture
def encoder(ecapa: EcapaEncoder) -> CountingEncoder:
    return CountingEncoder(ecapa)


@pytest.fixture
def prefix() -> str:
    return f"test{next(_prefixes)}"


@pytest.fixture(scope="session")
def speech() -> dict[str, Any]:
    """A 4 s clip of one voice at 16 kHz, as float samples and WAV bytes."""
    samples, rate = espeak(SENTENCES[0])
    samples = fit_duration(samples, rate, 4.0)
    return {"samples": samples, "rate": rate, "wav": encode(samples, rate)}


@pytest.fixture(scope="session")
def other_speech() -> bytes:
    samples, rate = espeak(SENTENCES[1], voice="en-gb")
    return encode(fit_duration(samples, rate, 3.0), rate)


def make_core(encoder: Any, redis_url: str | None, prefix: str, *, retry_s: float = 0.2, **settings: Any) -> Embedder:
    """The Embedder exactly as the server wires it, on the given Redis (or none), without gRPC."""
    stats = EmbedderStats()

    def count_error() -> None:
        stats.redis_errors += 1

    store = RedisStore(redis_url, timeout_s=0.25, retry_interval_s=retry_s, on_error=count_error) if redis_url else None
    configured = replace(EmbedderSettings(), cache_prefix=prefix, local_cache_mb=64, **settings)
    return embedder_server.build_core(
        configured, {encoder.name: encoder}, store, ThreadPoolExecutor(max_workers=1), stats
    )


@pytest_asyncio.fixture
async def core(encoder: CountingEncoder, redis_server: LocalRedis, prefix: str) -> AsyncIterator[Embedder]:
    embedder = make_core(encoder, redis_server.url, prefix)
    yield embedder
    await embedder.close()


@pytest_asyncio.fixture
async def embedder_service(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str
) -> AsyncIterator[embedder_server.RunningEmbedder]:
    settings = replace(
        EmbedderSettings(), port=0, metrics_port=0, redis_url=redis_server.url, cache_prefix=prefix, max_audio_mb=2.0
    )
    running = await embedder_server.start(settings, encoders={"ecapa": encoder})
    yield running
    await running.stop()


@pytest.fixture(scope="session")
def kokoro() -> KokoroBackend:
    """Loaded once; its bundled-voice table is filled by the first test that needs it."""
    return KokoroBackend.load(REPO_ROOT / "models" / "kokoro", threads=2)


@dataclass
class Services:
    embedder: embedder_server.RunningEmbedder
    synthesizer: synthesizer_server.RunningSynthesizer

    @property
    def embedder_address(self) -> str:
        return f"127.0.0.1:{self.embedder.port}"

    @property
    def synthesizer_address(self) -> str:
        return f"127.0.0.1:{self.synthesizer.port}"


@pytest_asyncio.fixture
async def services(embedder_service: embedder_server.RunningEmbedder, kokoro: KokoroBackend) -> AsyncIterator[Services]:
    settings = replace(SynthesizerSettings(), port=0, embedder_address=f"127.0.0.1:{embedder_service.port}")
    running = await synthesizer_server.start(settings, backends={"kokoro": kokoro})
    await running.warm_up
    yield Services(embedder_service, running)
    await running.stop()


# -- IndexTTS2 test stand-in (tests/standins/indextts mirrors upstream's interface) ----------
STANDINS = Path(__file__).resolve().parent / "standins"


def _drop_indextts() -> None:
    for name in [n for n in sys.modules if n == "indextts" or n.startswith("indextts.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def infer_v2() -> Iterator[ModuleType]:
    _drop_indextts()
    sys.path.insert(0, str(STANDINS))
    # The stand-in's ops are tiny: one intra-op thread is fastest, and it keeps OpenMP workers
    # from spinning against other processes on a small, busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        module = importlib.import_module("indextts.infer_v2")
        assert Path(module.__file__).resolve().is_relative_to(STANDINS), "the real indextts was imported"
        yield module
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(STANDINS))
        _drop_indextts()


@pytest.fixture(scope="module")
def tts(infer_v2: ModuleType) -> Any:
    """The stand-in IndexTTS2, built exactly as upstream's class is constructed."""
    return infer_v2.IndexTTS2(cfg_path="checkpoints/config.yaml", model_dir="checkpoints", device="cpu")
