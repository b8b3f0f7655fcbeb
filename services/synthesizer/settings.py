"""Synthesizer settings: the one place each setting, its default and its help text live.

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
from services.common.paths import CHECKPOINTS_DIR, MODELS_DIR
from services.common.tls import ServerTLSSettings
from voxcache.tls import TLS


@dataclass(frozen=True)
class SynthesizerSettings(AuthSettings, ServerTLSSettings, HealthPortSettings):
    SERVICE: ClassVar[str] = "synthesizer"

    host: str = setting("127.0.0.1", "bind address")
    port: int = setting(50052, "gRPC port (0 = any free port)")
    embedder_address: str = setting("127.0.0.1:50051", "host:port of the Embedder that supplies voice conditioning")
    embedder_margin_ms: int = setting(50, "kept back from the caller's deadline when calling the Embedder")
    embedder_token: str = setting(
        "",
        "bearer token of the Synthesizer at an Embedder with --auth token (a delegate's; environment only)",
        secret=True,
    )
    embedder_timeout_s: float = setting(30.0, "deadline of an Embedder call when the caller set none")
    embedder_tls_ca: str = setting(
        "", "PEM CA that signed the Embedder's certificate; set it (or a client certificate) to reach it over TLS"
    )
    # Service-specific names only: the shared VOXCACHE_EMBEDDER_TLS_CERT/KEY are the Embedder's
    # own server certificate, which must never become this client's certificate.
    embedder_tls_cert: str = setting(
        "", "PEM client certificate for an Embedder that requires mTLS (with --embedder-tls-key)", shared_env=False
    )
    embedder_tls_key: str = setting("", "PEM private key of --embedder-tls-cert", shared_env=False)
    embedder_token: str = setting(
        "", "bearer token sent to the Embedder as `authorization: Bearer ...` (environment only)", secret=True
    )
    backend: str = setting("kokoro", "TTS backend: kokoro (offline default) or indextts2 (GPU + checkpoints)")
    model_dir: Path = setting(MODELS_DIR, "root of the verified model weights (scripts/setup.sh installs them)")
    threads: int = setting(0, "CPU threads for the TTS model (0 = runtime default)")
    max_text_chars: int = setting(2000, "longest accepted text")
    indextts2_checkpoints: Path = setting(
        CHECKPOINTS_DIR, "IndexTTS2 checkpoint directory (with config.yaml), for --backend indextts2"
    )
    indextts2_hf_cache: str = setting(
        "", "Hugging Face cache holding MaskGCT's semantic codec (default: <checkpoints>/hf_cache)"
    )
    indextts2_fp16: bool = setting(False, "run IndexTTS2 in float16 on CUDA")
    indextts2_emotion_text: bool = setting(
        False, "load IndexTTS2's Qwen emotion model so requests may set use_emo_text (about 1.2 GB more)"
    )
    indextts2_language: str = setting(
        "", "IndexTTS2 text normaliser language (en, zh, es); empty = upstream's zh+en auto-detection"
    )
    synthesis_concurrency: int = setting(
        1, "syntheses run at once (model threads); a backend keeps its own per-model lock where it needs one"
    )
    score_sample_rate: int = setting(
        0,
        "score the clone quality (speaker_similarity, one ECAPA pass at the Embedder) of 1 in N answers; "
        "0 = only answers whose request sets score_similarity",
    )
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR")

    @property
    def embedder_tls(self) -> TLS | None:
        """How to reach the Embedder: None (plaintext) unless a CA or a client certificate is set."""
        files = (self.embedder_tls_ca, self.embedder_tls_cert, self.embedder_tls_key)
        if not any(files):
            return None
        ca, cert, key = (value or None for value in files)
        return TLS(ca=ca, cert=cert, key=key)


def parse(argv: Sequence[str] | None = None) -> SynthesizerSettings:
    return parse_settings(
        SynthesizerSettings,
        argv,
        prog="voxcache-synthesizer",
        description="voxcache Synthesizer: text + a voice -> speech, conditioning from the Embedder",
    )
