"""Embedder settings: the one place each setting, its default and its help text live.

Flags and VOXCACHE_* variables are derived from the fields (services/common/config.py);
the domain objects receive this dataclass and keep no defaults of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from services.common.auth import AuthSettings
from services.common.config import parse_settings, setting
from services.common.health_port import HealthPortSettings
from services.common.paths import MODELS_DIR
from services.common.tls import ServerTLSSettings
from services.embedder.audio import AudioLimits


@dataclass(frozen=True)
class EmbedderSettings(AuthSettings, ServerTLSSettings, HealthPortSettings):
    SERVICE: ClassVar[str] = "embedder"

    host: str = setting("127.0.0.1", "bind address")
    port: int = setting(50051, "gRPC port (0 = any free port)")
    metrics_port: int = setting(9464, "Prometheus /metrics port (0 = off)")
    metrics_host: str = setting("127.0.0.1", "bind address of /metrics (loopback unless you publish it)")
    redis_url: str = setting(
        "",
        "redis:// or rediss://[user[:password]@]host[:port][/db]; a Redis Cluster: redis+cluster:// or "
        "rediss+cluster://[user[:password]@]host:port[,host:port...] (seed nodes); empty starts a private "
        "redis-server; 'none' keeps the in-process cache only",
    )
    redis_data_dir: str = setting(
        "",
        "data folder of the private redis-server (no --redis-url): its append-only file keeps registered voices "
        "across restarts; empty: $XDG_DATA_HOME/voxcache/embedder-redis (else ~/.local/share/...); "
        "'none': a throwaway temp folder",
    )
    redis_password: str = setting("", "Redis password (environment only)", secret=True)
    redis_timeout_ms: int = setting(250, "per-operation Redis timeout before the request is served without it")
    redis_retry_s: float = setting(1.0, "how long Redis is skipped after a failure before it is tried again")
    write_back_entries: int = setting(
        10_000, "entries computed while Redis was down, kept to write when it is back (oldest dropped past it)"
    )
    write_back_mb: int = setting(64, "bytes bound of that write-back queue")
    cache_prefix: str = setting("voxcache", "namespace of every Redis key")
    cache_hmac_keys: str = setting(
        "",
        "HMAC-SHA256 keys that sign cache values, `id:secret[,id:secret...]`: the first signs, all verify "
        "(rotation); empty: values are only checksummed (environment only)",
        secret=True,
    )
    share_content_cache: bool = setting(
        False,
        "one content cache for all tenants: a clip two tenants upload is extracted once, but a hit then tells a "
        "caller that another tenant uploaded the same bytes",
    )
    reencode_aliases: bool = setting(
        True,
        "on a miss, decode and look for the same samples cached under other bytes (WAV/FLAC, extra chunks, "
        "16/24-bit): found, the upload becomes an alias of that entry instead of a second extraction; costs a "
        "PCM index key per entry in Redis",
    )
    default_ttl_s: int = setting(7 * 24 * 3600, "TTL of cache entries; every hit slides it")
    local_cache_mb: int = setting(256, "size of the in-process LRU in front of Redis")
    warm_start: bool = setting(
        True,
        "before reporting SERVING, fill the in-process LRU with the hottest entries in Redis (up to its size)",
    )
    warm_start_s: float = setting(10.0, "the most a warm start may take before the Embedder serves regardless")
    warm_start_entries: int = setting(
        20_000, "entries ranked by requests in Redis's hot set (<prefix>:hot), and the most a warm start loads"
    )
    hotness_flush_s: float = setting(
        5.0, "how often each worker adds its per-entry request counts to the hot set (0 = not tracked)"
    )
    model_dir: Path = setting(MODELS_DIR, "root of the verified model weights (scripts/setup.sh installs them)")
    device: str = setting("auto", "auto, cpu or cuda[:N]")
    threads: int = setting(0, "CPU threads for the model (0 = torch default)")
    model_workers: int = setting(1, "concurrent model forward passes")
    ecapa_runtime: str = setting(
        "auto",
        "what runs ECAPA: auto (time torch, torch-no-onednn and onnxruntime on a warm-up clip at start and keep "
        "the fastest that matches torch), or one of them by name",
    )
    batch_window_ms: float = setting(
        0.0,
        "gather concurrent misses for up to this long into one forward pass per length bucket (0 = off: "
        "each miss runs alone)",
    )
    max_batch: int = setting(16, "most clips in one batched forward pass")
    max_audio_mb: float = setting(16.0, "largest accepted upload")
    max_duration_s: float = setting(30.0, "longest accepted clip")
    max_pending: int = setting(64, "queued extractions before new misses get RESOURCE_EXHAUSTED")
    preload_concurrency: int = setting(4, "Preload clips in flight at once (the model pool still serialises them)")
    voice_cache_s: float = setting(
        1.0, "how long a voice fetched from Redis is trusted; a delete on another worker reaches this one within it"
    )
    search_sync_s: float = setting(
        2.0,
        "SearchVoices: how often a worker checks the shared voice version before a search, in case it missed a "
        "change announcement (pub/sub drops messages while disconnected)",
    )
    ecapa_float16: bool = setting(
        True,
        "round ECAPA vectors to float16 values, stored in half the bytes and still served as float32 (552 instead "
        "of 1000 B of Redis per entry; cosine to the unrounded vector > 0.99999); false: exact float32",
    )
    indextts2_checkpoints: str = setting(
        "", "IndexTTS2 checkpoint directory; set it to add the indextts2 encoder (GPU box)"
    )
    indextts2_hf_cache: str = setting(
        "",
        "Hugging Face cache with w2v-bert-2.0, MaskGCT's codec and CAMPPlus (default: <checkpoints>/hf_cache)",
    )
    indextts2_float16: bool = setting(False, "store and serve IndexTTS2 bundles as float16 (half the bytes)")
    workers: int = setting(
        1,
        "Embedder processes serving this one address (SO_REUSEPORT), each with its own model and L1, all on one "
        "Redis; 0 = one per core, capped by available memory (see README: Scaling)",
    )
    worker_index: int = setting(-1, "this worker's index among --workers (set by the supervisor; -1: not a worker)")
    reuse_port: bool = setting(False, "bind with SO_REUSEPORT so several processes share the port (set by --workers)")
    lease_ms: int = setting(
        10_000,
        "cross-process single-flight: a miss first takes a lease in Redis for this long (renewed while it "
        "extracts), and other workers wait for its entry instead of extracting again; 0 = off",
    )
    lease_poll_ms: int = setting(250, "how often a worker waiting on another's lease re-checks Redis without news")
    worker_stats_s: float = setting(
        1.0, "how often each worker publishes its counters to Redis, where GetStats sums them across workers"
    )
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR")

    @property
    def max_audio_bytes(self) -> int:
        return int(self.max_audio_mb * 1024 * 1024)

    @property
    def audio_limits(self) -> AudioLimits:
        return AudioLimits(max_bytes=self.max_audio_bytes, max_duration_s=self.max_duration_s)


def parse(argv: Sequence[str] | None = None) -> EmbedderSettings:
    return parse_settings(
        EmbedderSettings,
        argv,
        prog="voxcache-embedder",
        description="voxcache Embedder: reference audio -> cached speaker conditioning over gRPC",
    )
