"""Shared real parts: one private redis-server, a private Redis Cluster, the real ECAPA
weights, espeak-ng speech.

Each test gets its own key prefix, so tests share the Redis processes without
sharing data. Servers run in-process on loopback ports picked by the OS. Outside
tests/embedder `redis_server` is the single server; tests/embedder/conftest.py runs each
Embedder test that touches Redis against both the single server and the cluster.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import redis
from redis.cluster import ClusterNode

from services.common.paths import REPO_ROOT
from services.common.redis_client import cluster_seeds, is_cluster_url
from services.common.redis_cluster import LocalCluster
from services.common.redis_server import LocalRedis
from services.embedder import server as embedder_server
from services.embedder.cache.record import Keyring
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
def single_redis() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """3 masters + 3 replicas, started once per session by the first test that needs it."""
    with LocalCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_server(single_redis: LocalRedis) -> LocalRedis:
    return single_redis


def raw_client(url: str) -> redis.Redis | redis.RedisCluster:
    """A plain synchronous redis-py client on a single server's or a cluster's URL, for tests
    that look at (or tamper with) what the Embedder stored."""
    if is_cluster_url(url):
        _, seeds = cluster_seeds(url)
        return redis.RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in seeds])
    return redis.Redis.from_url(url)


@pytest.fixture(scope="session")
def ecapa() -> EcapaEncoder:
    return EcapaEncoder(REPO_ROOT / "models" / "ecapa", device="cpu", threads=2)


class CountingEncoder:
    """The real encoder with call counters (a spy, not a mock), an optional hold-up, and an
    optional `refuse(samples)` that makes the model fail on chosen clips, alone or in a batch,
    as ECAPA fails a whole pass on a degenerate clip."""

    def __init__(self, inner: EcapaEncoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.weights_digest = inner.weights_digest
        self.tensors = inner.tensors
        self.calls = 0
        self.last_samples: np.ndarray | None = None
        self.before: Callable[[], None] | None = None
        self.batch_sizes: list[int] = []
        self.refuse: Callable[[np.ndarray], bool] | None = None

    def _check(self, samples: np.ndarray) -> None:
        if self.refuse is not None and self.refuse(samples):
            raise RuntimeError("ECAPA produced a degenerate embedding")

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        self.calls += 1
        self.last_samples = samples
        if self.before is not None:
            self.before()
        self._check(samples)
        return self.inner.encode(samples)

    def encode_batch(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self.batch_sizes.append(len(batch))
        if self.before is not None:
            self.before()
        for samples in batch:
            self._check(samples)
        return self.inner.encode_batch(batch)


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


def make_core(
    encoder: Any, redis_url: str | None, prefix: str, *, retry_s: float = 0.2, timeout_s: float = 0.25, **settings: Any
) -> Embedder:
    """The Embedder exactly as the server wires it, on the given Redis (or none), without gRPC."""
    if redis_url and is_cluster_url(redis_url):
        # A cluster client's first commands also read the slot table over fresh connections to
        # several nodes: on a loaded 2-core CI machine that overran 250 ms (a spurious fail-open).
        timeout_s = max(timeout_s, 1.0)
    stats = EmbedderStats()
    on_error, on_wrong_type = embedder_server.store_counters(stats)
    store = (
        RedisStore(
            redis_url, timeout_s=timeout_s, retry_interval_s=retry_s, on_error=on_error, on_wrong_type=on_wrong_type
        )
        if redis_url
        else None
    )
    configured = replace(EmbedderSettings(), cache_prefix=prefix, local_cache_mb=64, **settings)
    keyring = Keyring.parse(configured.cache_hmac_keys)
    return embedder_server.build_core(
        configured, {encoder.name: encoder}, store, ThreadPoolExecutor(max_workers=1), stats, keyring
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


# -- IndexTTS2: upstream's real classes, tiny random weights (tests/indextts2_tiny.py) -------
@dataclass(frozen=True)
class IndexTTS2Models:
    """Upstream `IndexTTS2` objects over one tiny checkpoint, built once per session.

    `front` and `generator` are the two halves exactly as the services load them
    (services/common/indextts2.py); `full` is one upstream object holding both halves'
    modules, with its own cache slots: upstream's path-based `infer`, the reference."""

    model_dir: Path
    hf_cache: Path
    front: Any
    generator: Any
    full: Any


@pytest.fixture(scope="session")
def indextts2(tmp_path_factory: pytest.TempPathFactory) -> IndexTTS2Models:
    from services.common.indextts2 import load_front_end, load_generator
    from tests.indextts2_tiny import build

    model_dir, hf_cache = build(tmp_path_factory.mktemp("indextts2"))
    front = load_front_end(model_dir, hf_cache, device="cpu")
    # nemo's grammars take a minute to build and write into site-packages: tests tokenize raw text.
    generator = load_generator(model_dir, hf_cache, device="cpu", text_normalizer=False)
    full = object.__new__(type(generator))
    full.__dict__.update(generator.__dict__)
    full.__dict__.update({k: v for k, v in front.__dict__.items() if k not in ("s2mel", "semantic_codec")})
    full.semantic_codec = front.semantic_codec  # the whole codec: quantize for the front end, vq2emb for codes
    full._init_cache()
    return IndexTTS2Models(model_dir, hf_cache, front, generator, full)
