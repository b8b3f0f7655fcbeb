"""SpeechBrain ECAPA-TDNN (spkrec-ecapa-voxceleb): 192-d speaker embeddings.

Loaded strictly from a local directory (never a hub): the hub would be
unreachable offline and unverifiable online.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from services.common.weights import WeightFile, WeightsError, WeightsManifest
from services.embedder.conditioning import TensorSpec
from voxcache.tensors import SPEAKER

if TYPE_CHECKING:
    from services.embedder.encoders.base import Encoder
    from services.embedder.settings import EmbedderSettings

log = logging.getLogger(__name__)

#: SpeechBrain's spkrec-ecapa-voxceleb checkpoint (Apache-2.0), byte for byte.
MANIFEST = WeightsManifest(
    version="ecapa-v1 16k-mono-polyphase l2norm",
    files=(
        WeightFile("hyperparams.yaml", "6f78854fa04ba59e761437b76a2575d3aba5e5016de3e9b69f0c9a5077fb1a41"),
        WeightFile(
            "embedding_model.ckpt", "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2", 83_316_686
        ),
        WeightFile("mean_var_norm_emb.ckpt", "cd70225b05b37be64fc5a95e24395d804231d43f74b2e1e5a513db7b69b34c33"),
        WeightFile("classifier.ckpt", "fd9e3634fe68bd0a427c95e354c0c677374f62b3f434e45b78599950d860d535"),
        WeightFile("label_encoder.txt", "e13c3a167bb4112685670ee896d20e2b565af16b3a4ceeaa8689fa4d22adb8b9"),
    ),
)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return device


class EcapaEncoder:
    name = "ecapa"
    sample_rate = 16_000
    weights_digest = MANIFEST.digest
    tensors = (TensorSpec(SPEAKER, "float32", (192,)),)

    def __init__(self, model_dir: Path, *, device: str = "auto", threads: int = 0) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from speechbrain.inference.speaker import EncoderClassifier

        MANIFEST.verify(model_dir)
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        self._torch = torch
        self._model = EncoderClassifier.from_hparams(
            source=str(model_dir),
            savedir=None,
            overrides={"pretrained_path": str(model_dir)},
            run_opts={"device": self.device},
        )
        self._model.eval()
        self._check_loaded(model_dir / "embedding_model.ckpt")
        log.info("ECAPA-TDNN loaded from %s on %s (%d threads)", model_dir, self.device, torch.get_num_threads())

    def _check_loaded(self, checkpoint: Path) -> None:
        """Prove the checkpoint really landed in the module (strict=False would hide a miss)."""
        expected = self._torch.load(checkpoint, map_location="cpu", weights_only=True)
        actual = self._model.mods["embedding_model"].state_dict()
        missing = [k for k in expected if k not in actual]
        differing = [k for k in expected if k in actual and not self._torch.equal(expected[k], actual[k].cpu())]
        if missing or differing or len(expected) != len(actual):
            raise WeightsError(f"ECAPA weights not loaded: missing={missing[:3]} differing={differing[:3]}")

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0).to(self.device)
            embedding = self._model.encode_batch(wav).reshape(-1).float().cpu().numpy()
        norm = float(np.linalg.norm(embedding))
        if not np.isfinite(norm) or norm == 0.0:
            raise RuntimeError("ECAPA produced a degenerate embedding")
        return {SPEAKER: (embedding / norm).astype(np.float32)}


def from_settings(settings: EmbedderSettings) -> Encoder:
    """Always on: ECAPA is the default encoder and its weights ship with setup."""
    from services.embedder.encoders.storage import Float16Rounded

    encoder = EcapaEncoder(settings.model_dir / "ecapa", device=settings.device, threads=settings.threads)
    return Float16Rounded(encoder) if settings.ecapa_float16 else encoder
