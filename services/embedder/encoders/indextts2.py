"""IndexTTS2 conditioning, computed by IndexTTS2's own front end and returned for caching.

Upstream (`indextts.infer_v2.IndexTTS2`, from the optional `indextts2-inference` package)
computes a voice's conditioning inside `infer`, from a file path, and keeps one speaker's
result in instance slots. This encoder does not re-type that computation: it writes the
decoded clip to a temporary WAV and calls upstream's `_get_speaker_conditioning` and
`_get_emotion_conditioning` on it, then hands back what they return:

=====================  ===============  ===================================================
name                   shape            what upstream computes
=====================  ===============  ===================================================
``spk_cond_emb``       (1, T, 1024)     w2v-BERT 2.0 layer 17, normalised; T ~ 50/s
``style``              (1, 192)         CAMPPlus on a mean-removed 80-bin fbank
``prompt_condition``   (1, T', C)       s2mel length regulator (C = 512 in the real config)
``ref_mel``            (1, 80, T')      22.05 kHz log-mel, T' ~ 86/s
``emo_cond_emb``       (1, T, 1024)     layer 17 again, from the clip re-read at 16 kHz
=====================  ===============  ===================================================

Upstream reads the clip with librosa at 22.05 kHz (its default) and cuts it to 15 s. The
Embedder has already decoded the upload to mono 22.05 kHz float32; the temporary file holds
those samples exactly (32-bit float WAV), so for a 22.05 kHz upload the tensors equal what
upstream computes from the upload itself. `emo_cond_emb` differs from `spk_cond_emb`
(upstream resamples the 16 kHz branch differently for emotion), so it is cached too: the
Synthesizer fills upstream's emotion slot with it.

The front end's slots are instance state, so calls are serialised on a lock and the slots
are cleared before and after each clip.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from services.common.indextts2 import CAMPPLUS, SEMANTIC_CODEC, W2V_BERT_REPO, load_front_end
from services.common.weights import WeightFile, WeightsError, WeightsManifest, sha256_file
from services.embedder.conditioning import TensorSpec
from voxcache.tensors import EMO_COND_EMB, PROMPT_CONDITION, REF_MEL, SPK_COND_EMB, STYLE

if TYPE_CHECKING:
    from services.embedder.encoders.base import Encoder
    from services.embedder.settings import EmbedderSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 22_050

#: Part of every cache key: changes whenever what this encoder stores changes.
PREPROCESSING_VERSION = "indextts2-v2 upstream-front-end 22k05-float-wav spk+emo"

#: Checkpoint files that determine the front end's output, relative to the checkpoint dir.
MODEL_FILES = ("config.yaml", "wav2vec2bert_stats.pt", "s2mel.pth")
#: The same for the auxiliary models in the Hugging Face cache: (repo, file).
HUB_FILES = (
    (W2V_BERT_REPO, "config.json"),
    (W2V_BERT_REPO, "preprocessor_config.json"),
    (W2V_BERT_REPO, "model.safetensors"),
    SEMANTIC_CODEC,
    CAMPPLUS,
)

#: What `encode` returns, as the table above says (None: grows with the clip; C is config-dependent).
OUTPUTS = (
    TensorSpec(SPK_COND_EMB, "float32", (1, None, 1024)),
    TensorSpec(STYLE, "float32", (1, 192)),
    TensorSpec(PROMPT_CONDITION, "float32", (1, None, None)),
    TensorSpec(REF_MEL, "float32", (1, 80, None)),
    TensorSpec(EMO_COND_EMB, "float32", (1, None, 1024)),
)


def checkpoint_manifest(model_dir: Path, hf_cache: Path) -> WeightsManifest:
    """Hash every file the front end reads (several GB: seconds to tens of seconds)."""
    from huggingface_hub import try_to_load_from_cache

    paths: dict[str, Path | None] = {name: model_dir / name for name in MODEL_FILES}
    for repo, filename in HUB_FILES:
        found = try_to_load_from_cache(repo, filename, cache_dir=str(hf_cache))
        paths[f"hf:{repo}/{filename}"] = Path(found) if isinstance(found, str) else None
    missing = [name for name, path in paths.items() if path is None or not path.is_file()]
    if missing:
        raise WeightsError(
            f"IndexTTS2 checkpoint is incomplete (model dir {model_dir}, hub cache {hf_cache}): missing "
            f"{', '.join(missing)}. See README, 'indextts2 backend', for the download commands."
        )
    entries = tuple(WeightFile(name, sha256_file(path), path.stat().st_size) for name, path in paths.items() if path)
    return WeightsManifest(version=PREPROCESSING_VERSION, files=entries)


class IndexTTS2Encoder:
    """Encoder protocol over an upstream `IndexTTS2` that has at least its front end loaded."""

    name = "indextts2"
    sample_rate = SAMPLE_RATE
    tensors = OUTPUTS
    #: SearchVoices compares CAMPPlus's (1, 192) speaker style: the other tensors grow with the clip.
    search_tensor = STYLE

    def __init__(self, tts: Any, weights_digest: str) -> None:
        self.tts = tts
        self.weights_digest = weights_digest
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoints(
        cls, model_dir: Path | str, hf_cache: Path | str | None = None, *, device: str | None = None
    ) -> IndexTTS2Encoder:
        """Hash the files, then load only the front end (see services/common/indextts2.py)."""
        model_dir = Path(model_dir)
        hub = Path(hf_cache) if hf_cache else model_dir / "hf_cache"
        manifest = checkpoint_manifest(model_dir, hub)
        tts = load_front_end(model_dir, hub, device=device)
        log.info("IndexTTS2 front end loaded from %s on %s (digest %s)", model_dir, tts.device, manifest.digest[:12])
        return cls(tts, manifest.digest)

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """Mono float32 at 22.05 kHz in; upstream's five per-voice tensors out, as float32."""
        import soundfile as sf
        import torch

        wave = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        with tempfile.NamedTemporaryFile(suffix=".wav") as clip:
            sf.write(clip.name, wave, SAMPLE_RATE, subtype="FLOAT", format="WAV")
            with self._lock, torch.inference_mode():
                self.tts._init_cache()  # never answer from another clip's slots
                try:
                    spk_cond_emb, style, prompt_condition, ref_mel = self.tts._get_speaker_conditioning(clip.name)
                    emo_cond_emb = self.tts._get_emotion_conditioning(clip.name)
                finally:
                    self.tts._init_cache()
        out = {
            SPK_COND_EMB: _to_numpy(spk_cond_emb),
            STYLE: _to_numpy(style),
            PROMPT_CONDITION: _to_numpy(prompt_condition),
            REF_MEL: _to_numpy(ref_mel),
            EMO_COND_EMB: _to_numpy(emo_cond_emb),
        }
        for key, value in out.items():
            if not np.isfinite(value).all():
                raise RuntimeError(f"IndexTTS2 produced non-finite values in {key}")
        return out


def _to_numpy(tensor: Any) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().float().cpu().numpy(), dtype=np.float32)


def from_settings(settings: EmbedderSettings) -> Encoder | None:
    """Only with --indextts2-checkpoints (a GPU box); float16 storage when asked for."""
    if not settings.indextts2_checkpoints:
        return None
    from services.embedder.encoders.storage import Float16Storage

    device = None if settings.device == "auto" else settings.device
    encoder: Encoder = IndexTTS2Encoder.from_checkpoints(
        settings.indextts2_checkpoints, settings.indextts2_hf_cache or None, device=device
    )
    return Float16Storage(encoder) if settings.indextts2_float16 else encoder
