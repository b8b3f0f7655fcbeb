"""Synthesizer settings: one frozen dataclass; flags and VOXCACHE_* variables are derived from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.common.config import parse_settings
from services.embedder.settings import REPO_ROOT


@dataclass(frozen=True)
class SynthesizerSettings:
    host: str = "127.0.0.1"
    port: int = 50052
    embedder_address: str = "127.0.0.1:50051"
    embedder_margin_ms: int = 50
    backend: str = "kokoro"
    model_dir: Path = REPO_ROOT / "models"
    threads: int = 0
    max_text_chars: int = 2000
    indextts2_checkpoints: Path = REPO_ROOT / "checkpoints"
    indextts2_fp16: bool = False
    log_level: str = "INFO"


HELP = {
    "host": "bind address",
    "port": "gRPC port (0 = any free port)",
    "embedder_address": "host:port of the Embedder that supplies voice conditioning",
    "embedder_margin_ms": "kept back from the caller's deadline when calling the Embedder",
    "backend": "TTS backend: kokoro (offline default) or indextts2 (GPU + checkpoints)",
    "model_dir": "root of the verified model weights (scripts/setup.sh installs them)",
    "threads": "CPU threads for the TTS model (0 = runtime default)",
    "max_text_chars": "longest accepted text",
    "indextts2_checkpoints": "IndexTTS2 checkpoint directory (with config.yaml), for --backend indextts2",
    "indextts2_fp16": "run IndexTTS2 in float16 on CUDA",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
}


def parse(argv: Sequence[str] | None = None) -> SynthesizerSettings:
    return parse_settings(
        SynthesizerSettings,
        argv,
        service="synthesizer",
        prog="voxcache-synthesizer",
        description="voxcache Synthesizer: text + a voice -> speech, conditioning from the Embedder",
        help=HELP,
    )
