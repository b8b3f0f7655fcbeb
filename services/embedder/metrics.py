"""Counters and latency distributions of one Embedder, its snapshot, and the Prometheus view.

One source of truth: `EmbedderStats` is plain Python; `Embedder.snapshot()` freezes it
together with the cache's gauges into an `EmbedderSnapshot`, which both GetStats and the
/metrics collector read, so the RPC and the page can never disagree. A per-instance
registry keeps several servers in one process (tests) apart.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from services.embedder.cache.tiered import CacheTier
from services.embedder.encoders.runtimes import RuntimeChoice

if TYPE_CHECKING:
    from services.embedder.similarity import SimilarityFigures

#: Latency buckets (seconds): sub-ms hits to multi-second cold extractions.
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("hit_local", "hit_redis", "miss", "error")
#: Prometheus outcome label of each answering tier; None (no answer) is "error".
MetricFamily = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
_OUTCOME = {CacheTier.LOCAL: "hit_local", CacheTier.REDIS: "hit_redis", CacheTier.COMPUTED: "miss", None: "error"}


@dataclass
class Histogram:
    """Counts per upper bound (latency seconds by default), as Prometheus histograms want them."""

    bounds: tuple[float, ...] = BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class LatencyWindow:
    """Recent samples for percentiles; bounded so a long-lived server stays small."""

    def __init__(self, size: int = 4096) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, ms: float) -> None:
        self._samples.append(ms)

    def median_s(self) -> float | None:
        """The median of the recent samples in seconds; None before the first."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        return ordered[len(ordered) // 2] / 1000

    def percentiles(self) -> tuple[float, float, float, int]:
        if not self._samples:
            return 0.0, 0.0, 0.0, 0
        ordered = sorted(self._samples)
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        return pick(0.50), pick(0.95), pick(0.99), len(ordered)


@dataclass
class EmbedderStats:
    requests: int = 0
    local_hits: int = 0
    redis_hits: int = 0
    misses: int = 0
    errors: int = 0
    extractions: int = 0
    redis_errors: int = 0
    #: Redis keys that held another type than the Embedder stores there (replaced; reported
    #: with the cache's rejected values as corrupt entries).
    wrong_type_keys: int = 0
    #: Model forward passes, and the clips among them that shared a pass with others (batching.py).
    forward_passes: int = 0
    batched_clips: int = 0
    #: Extractions dropped while still queued for a model slot, because every caller had gone.
    dropped_extractions: int = 0
    #: Extractions refused at once with RESOURCE_EXHAUSTED (queue full, or it could not finish in time).
    shed: int = 0
    extraction_latency: LatencyWindow = field(default_factory=LatencyWindow)
    extraction_histogram: Histogram = field(default_factory=Histogram)
    request_histograms: dict[str, Histogram] = field(default_factory=lambda: {o: Histogram() for o in OUTCOMES})

    def record_request(self, tier: CacheTier | None, seconds: float) -> None:
        """One finished request: the tier that answered it, or None when it failed."""
        self.requests += 1
        if tier is CacheTier.LOCAL:
            self.local_hits += 1
        elif tier is CacheTier.REDIS:
            self.redis_hits += 1
        elif tier is CacheTier.COMPUTED:
            self.misses += 1
        else:
            self.errors += 1
        self.request_histograms[_OUTCOME[tier]].observe(seconds)

    def record_shed(self) -> None:
        self.shed += 1

    def record_dropped_extraction(self) -> None:
        self.dropped_extractions += 1

    def record_extraction(self, seconds: float) -> None:
        self.extractions += 1
        self.extraction_latency.add(seconds * 1000)
        self.extraction_histogram.observe(seconds)

    def record_forward_pass(self, clips: int) -> None:
        self.forward_passes += 1
        if clips > 1:
            self.batched_clips += clips

    def snapshot(self, **gauges: object) -> EmbedderSnapshot:
        """These counters, frozen, plus the cache's counters and gauges the caller adds."""
        p50, p95, p99, samples = self.extraction_latency.percentiles()
        return EmbedderSnapshot(
            requests=self.requests,
            local_hits=self.local_hits,
            redis_hits=self.redis_hits,
            misses=self.misses,
            errors=self.errors,
            extractions=self.extractions,
            redis_errors=self.redis_errors,
            dropped_extractions=self.dropped_extractions,
            shed=self.shed,
            extraction_p50_ms=p50,
            extraction_p95_ms=p95,
            extraction_p99_ms=p99,
            extraction_samples=samples,
            forward_passes=self.forward_passes,
            batched_clips=self.batched_clips,
            extraction_histogram=deepcopy(self.extraction_histogram),
            request_histograms=deepcopy(self.request_histograms),
            **gauges,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class EmbedderSnapshot:
    """Everything GetStats and /metrics report, at one instant."""

    requests: int
    local_hits: int
    redis_hits: int
    misses: int
    errors: int
    extractions: int
    redis_errors: int
    #: Extractions dropped before they started: every caller had gone (deadline, cancel, disconnect).
    dropped_extractions: int
    coalesced: int
    corrupt_entries: int
    redis_available: bool
    local_entries: int
    local_bytes: int
    local_capacity_bytes: int
    extraction_p50_ms: float
    extraction_p95_ms: float
    extraction_p99_ms: float
    extraction_samples: int
    extraction_histogram: Histogram
    request_histograms: dict[str, Histogram]
    #: Entries (and their bytes) computed while Redis was down, waiting to be written to it.
    write_back_pending: int
    write_back_bytes: int
    #: Of those, written once Redis was back / dropped because the queue was full.
    write_back_written: int
    write_back_dropped: int
    #: Keys in the shared store; -1 when not counted (Prometheus snapshots) or unreachable.
    redis_entries: int = -1
    forward_passes: int = 0
    batched_clips: int = 0
    #: SearchVoices: voices and matrix bytes in this worker's copies, and full loads of a copy.
    indexed_voices: int = 0
    index_bytes: int = 0
    index_loads: int = 0
    #: What runs each encoder that has a choice (ECAPA on CPU: encoders/runtimes.py), by encoder.
    runtimes: Mapping[str, RuntimeChoice] = field(default_factory=dict)
    #: Misses answered with the entry of the same samples in other bytes (cache/reencode.py), and
    #: store lookups answered through such an alias.
    reencode_aliases: int = 0
    alias_hits: int = 0
    #: What the warm start put in L1 before SERVING (cache/hotness.py), and how long it took.
    warm_start_entries: int = 0
    warm_start_bytes: int = 0
    warm_start_ms: float = 0.0
    #: Misses answered by another worker's extraction after waiting on its lease (cache/lease.py),
    #: and leases taken over from a holder that died or failed.
    peer_fills: int = 0
    lease_takeovers: int = 0
    #: Which worker this snapshot is from, and how many workers' counters it sums (fleet.py).
    worker: str = ""
    workers: int = 1
    #: Extractions refused at once with RESOURCE_EXHAUSTED: the admission queue shed them.
    shed: int = 0
    #: What runs each encoder that has a choice (ECAPA on CPU: encoders/runtimes.py), by encoder.
    runtimes: Mapping[str, RuntimeChoice] = field(default_factory=dict)
    #: Clone quality of generated speech (ScoreSpeaker), by the backend label callers gave.
    speaker_similarity: Mapping[str, SimilarityFigures] = field(default_factory=dict)

    @property
    def hits(self) -> int:
        return self.local_hits + self.redis_hits

    @property
    def hit_ratio(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


class StatsCollector(Collector):
    def __init__(self, snapshot: Callable[[], EmbedderSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[MetricFamily]:
        s = self._snapshot()
        requests = CounterMetricFamily("voxcache_embed_requests", "Embed requests by outcome", labels=["outcome"])
        latency = HistogramMetricFamily(
            "voxcache_embed_latency_seconds", "Embed latency by outcome", labels=["outcome"]
        )
        for outcome, hist in s.request_histograms.items():
            requests.add_metric([outcome], hist.cumulative()[-1][1])
            latency.add_metric([outcome], hist.cumulative(), hist.total)
        yield requests
        yield latency
        extraction = HistogramMetricFamily("voxcache_extraction_seconds", "Model forward passes")
        extraction.add_metric([], s.extraction_histogram.cumulative(), s.extraction_histogram.total)
        yield extraction
        for name, doc, value in (
            ("voxcache_extractions", "Model forward passes run", s.extractions),
            ("voxcache_coalesced_misses", "Misses that joined an in-flight extraction", s.coalesced),
            (
                "voxcache_dropped_extractions",
                "Extractions dropped while queued for the model, every caller having gone",
                s.dropped_extractions,
            ),
            (
                "voxcache_shed_extractions",
                "Extractions refused at once with RESOURCE_EXHAUSTED (queue full, or it could not finish in time)",
                s.shed,
            ),
            ("voxcache_redis_errors", "Failed or timed-out Redis operations", s.redis_errors),
            (
                "voxcache_corrupt_entries",
                "Redis values rejected and replaced: failed checksum or signature, not the encoder's "
                "declared tensors, or a key of another type",
                s.corrupt_entries,
            ),
            (
                "voxcache_write_back_written",
                "Entries computed while Redis was down, written once back",
                s.write_back_written,
            ),
            ("voxcache_write_back_dropped", "Entries dropped from a full write-back queue", s.write_back_dropped),
            ("voxcache_forward_passes", "Model forward passes (a batched pass counts once)", s.forward_passes),
            ("voxcache_batched_clips", "Clips that shared a forward pass with others", s.batched_clips),
            (
                "voxcache_reencode_aliases",
                "Misses answered by the same samples cached under other bytes",
                s.reencode_aliases,
            ),
            ("voxcache_alias_hits", "Redis lookups answered through an alias", s.alias_hits),
            ("voxcache_index_loads", "Full loads of a tenant's voice search copy", s.index_loads),
            (
                "voxcache_peer_fills",
                "Misses answered by another worker's extraction, after waiting on its lease",
                s.peer_fills,
            ),
            ("voxcache_lease_takeovers", "Leases taken over from a worker that died or failed", s.lease_takeovers),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("voxcache_cache_hit_ratio", "hits / (hits + misses) since start", value=s.hit_ratio)
        for name, value in (
            ("local_cache_entries", s.local_entries),
            ("local_cache_bytes", s.local_bytes),
            ("redis_available", float(s.redis_available)),
            ("write_back_pending", s.write_back_pending),
            ("write_back_bytes", s.write_back_bytes),
            ("warm_start_entries", s.warm_start_entries),
            ("indexed_voices", s.indexed_voices),
            ("index_bytes", s.index_bytes),
        ):
            yield GaugeMetricFamily(f"voxcache_{name}", name.replace("_", " "), value=value)
        yield from runtime_metrics(s.runtimes)
        if s.worker:
            info = GaugeMetricFamily(
                "voxcache_worker_info", "Which worker this /metrics port belongs to (1)", labels=["worker"]
            )
            info.add_metric([s.worker], 1.0)
            yield info
        yield from similarity_metrics(s.speaker_similarity)


def similarity_metrics(figures: Mapping[str, SimilarityFigures]) -> Iterator[MetricFamily]:
    """ScoreSpeaker's cosines per backend label (a histogram) and its outcomes (a counter)."""
    if not figures:
        return
    histogram = HistogramMetricFamily(
        "voxcache_speaker_similarity",
        "Cosine between ECAPA embeddings of generated speech and its reference (ScoreSpeaker), by backend",
        labels=["backend"],
    )
    scores = CounterMetricFamily(
        "voxcache_speaker_scores", "ScoreSpeaker requests by backend and outcome", labels=["backend", "outcome"]
    )
    for label, f in figures.items():
        histogram.add_metric([label], f.histogram.cumulative(), f.histogram.total)
        scores.add_metric([label, "scored"], f.scored)
        scores.add_metric([label, "failed"], f.failed)
    yield histogram
    yield scores


def runtime_metrics(runtimes: Mapping[str, RuntimeChoice]) -> Iterator[GaugeMetricFamily]:
    """The chosen runtime as an info-style gauge (1 on its label), and each candidate's start-up timing.

    Nothing when no encoder has a choice of runtime (a family without samples would be noise).
    """
    if not runtimes:
        return
    chosen = GaugeMetricFamily(
        "voxcache_encoder_runtime_info",
        "What runs each encoder (1 on the chosen runtime; forced: set by --ecapa-runtime)",
        labels=["encoder", "runtime", "forced"],
    )
    timed = GaugeMetricFamily(
        "voxcache_encoder_runtime_warmup_seconds",
        "Best of 5 forward passes of each candidate runtime on the warm-up clip at start",
        labels=["encoder", "runtime"],
    )
    for encoder, choice in runtimes.items():
        chosen.add_metric([encoder, choice.name, str(choice.forced).lower()], 1.0)
        for runtime, ms in choice.timings_ms.items():
            timed.add_metric([encoder, runtime], ms / 1000)
    yield chosen
    yield timed


def serve_metrics(port: int, snapshot: Callable[[], EmbedderSnapshot], host: str):
    """Expose /metrics on its own HTTP port (a scrape must never queue behind model work)."""
    registry = CollectorRegistry()
    registry.register(StatsCollector(snapshot))
    return start_http_server(port, addr=host, registry=registry)
