"""Embedder settings: one frozen dataclass; flags and VOXCACHE_* variables are derived from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.common.config import parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class EmbedderSettings:
    host: str = "127.0.0.1"
    port: int = 50051
    metrics_port: int = 9464
    redis_url: str = ""
    redis_password: str = ""
    redis_timeout_ms: int = 250
    redis_retry_s: float = 1.0
    cache_prefix: str = "voxcache"
    default_ttl_s: int = 7 * 24 * 3600
    local_cache_mb: int = 256
    model_dir: Path = REPO_ROOT / "models"
    device: str = "auto"
    threads: int = 0
    model_workers: int = 1
    max_audio_mb: float = 16.0
    max_duration_s: float = 30.0
    max_pending: int = 64
    indextts2_checkpoints: str = ""
    indextts2_float16: bool = False
    log_level: str = "INFO"


HELP = {
    "host": "bind address",
    "port": "gRPC port (0 = any free port)",
    "metrics_port": "Prometheus /metrics port (0 = off)",
    "redis_url": "redis:// or rediss://[user[:password]@]host[:port][/db]; empty starts a private "
    "redis-server; 'none' keeps the in-process cache only",
    "redis_password": "Redis password (environment only)",
    "redis_timeout_ms": "per-operation Redis timeout before the request is served without it",
    "redis_retry_s": "how long Redis is skipped after a failure before it is tried again",
    "cache_prefix": "namespace of every Redis key",
    "default_ttl_s": "TTL of cache entries; every hit slides it",
    "local_cache_mb": "size of the in-process LRU in front of Redis",
    "model_dir": "root of the verified model weights (scripts/setup.sh installs them)",
    "device": "auto, cpu or cuda[:N]",
    "threads": "CPU threads for the model (0 = torch default)",
    "model_workers": "concurrent model forward passes",
    "max_audio_mb": "largest accepted upload",
    "max_duration_s": "longest accepted clip",
    "max_pending": "queued extractions before new misses get RESOURCE_EXHAUSTED",
    "indextts2_checkpoints": "IndexTTS2 checkpoint directory; set it to add the indextts2 encoder (GPU box)",
    "indextts2_float16": "store and serve IndexTTS2 bundles as float16 (half the bytes)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
}


def parse(argv: Sequence[str] | None = None) -> EmbedderSettings:
    return parse_settings(
        EmbedderSettings,
        argv,
        service="embedder",
        prog="voxcache-embedder",
        description="voxcache Embedder: reference audio -> cached speaker conditioning over gRPC",
        help=HELP,
        secrets=("redis_password",),
    )
