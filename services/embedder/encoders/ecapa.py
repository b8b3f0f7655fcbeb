"""SpeechBrain ECAPA-TDNN (spkrec-ecapa-voxceleb): 192-d speaker embeddings.

Loaded strictly from a local directory (never a hub): the hub would be
unreachable offline and unverifiable online.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from services.common.weights import WeightFile, WeightsError, WeightsManifest
from services.embedder.conditioning import TensorSpec
from services.embedder.encoders import ecapa_onnx, runtimes
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
    #: The runtime does not enter the digest: every runtime matches torch within cosine 0.9999,
    #: so workers on different CPUs share one cache.
    weights_digest = MANIFEST.digest
    tensors = (TensorSpec(SPEAKER, "float32", (192,)),)

    def __init__(
        self, model_dir: Path, *, device: str = "auto", threads: int = 0, runtime: str = runtimes.TORCH
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from speechbrain.inference.speaker import EncoderClassifier

        if runtime not in runtimes.CHOICES:
            raise ValueError(f"unknown ECAPA runtime {runtime!r}; choose one of {', '.join(runtimes.CHOICES)}")
        MANIFEST.verify(model_dir)
        if threads > 0:
            torch.set_num_threads(threads)
        self.model_dir = model_dir
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
        from services.embedder.encoders.ecapa_lengths import LengthAwareEcapa

        self._network = LengthAwareEcapa(self._model.mods["embedding_model"]).eval()
        self._hop = int(self._model.mods.compute_features.compute_STFT.hop_length)
        self.runtime = self._choose_runtime(runtime)
        self._forward = self.candidates([self.runtime.name])[0][self.runtime.name]
        log.info(
            "ECAPA-TDNN loaded from %s on %s (%d threads), runtime %s",
            model_dir,
            self.device,
            torch.get_num_threads(),
            self.runtime.describe(),
        )

    @property
    def embedding_module(self) -> Any:
        """The embedding network alone (features + lengths -> embedding), padding per clip: what runtimes run."""
        return self._network

    def _check_loaded(self, checkpoint: Path) -> None:
        """Prove the checkpoint really landed in the module (strict=False would hide a miss)."""
        expected = self._torch.load(checkpoint, map_location="cpu", weights_only=True)
        actual = self._model.mods["embedding_model"].state_dict()
        missing = [k for k in expected if k not in actual]
        differing = [k for k in expected if k in actual and not self._torch.equal(expected[k], actual[k].cpu())]
        if missing or differing or len(expected) != len(actual):
            raise WeightsError(f"ECAPA weights not loaded: missing={missing[:3]} differing={differing[:3]}")

    def candidates(self, names: Sequence[str]) -> tuple[dict[str, runtimes.Forward], dict[str, str]]:
        """The runtimes among `names` that can run here, and why each other one cannot."""
        available: dict[str, runtimes.Forward] = {}
        skipped: dict[str, str] = {}
        for name in names:
            if name == runtimes.TORCH:
                available[name] = runtimes.TorchForward(self.embedding_module, onednn=True)
            elif self.device != "cpu":
                skipped[name] = f"CPU only (the model is on {self.device})"
            elif name == runtimes.TORCH_NO_ONEDNN:
                available[name] = runtimes.TorchForward(self.embedding_module, onednn=False)
            elif name == runtimes.ONNXRUNTIME:
                found, why = ecapa_onnx.find_export(self.model_dir, self.weights_digest)
                if found is None:
                    skipped[name] = why
                else:
                    available[name] = runtimes.OnnxForward(found.path, threads=self._torch.get_num_threads())
        return available, skipped

    def _choose_runtime(self, wanted: str) -> runtimes.RuntimeChoice:
        """`auto`: time the candidates on a warm-up clip; a named runtime must exist and match torch."""
        if wanted == runtimes.AUTO and self.device != "cpu":
            return runtimes.RuntimeChoice(runtimes.TORCH, False, skipped={"others": f"CPU only ({self.device})"})
        names = runtimes.CANDIDATES if wanted == runtimes.AUTO else [wanted]
        available, skipped = self.candidates(names)
        for name, why in skipped.items():
            log.info("ECAPA runtime %s skipped: %s", name, why)
        if wanted != runtimes.AUTO and wanted not in available:
            raise WeightsError(f"--ecapa-runtime {wanted} cannot run: {skipped[wanted]}")
        feats, lens = self.features([runtimes.warmup_clip(self.sample_rate)])
        reference = runtimes.TorchForward(self.embedding_module, onednn=True)
        if wanted == runtimes.AUTO:
            return runtimes.select(available, reference, feats, lens, skipped=skipped)
        cosine = runtimes.agreement(reference, available[wanted], feats, lens)
        if cosine < runtimes.MIN_COSINE:
            raise WeightsError(f"--ecapa-runtime {wanted} does not match torch (cosine {cosine:.6f})")
        return runtimes.RuntimeChoice(wanted, True, cosines={wanted: round(cosine, 7)})

    def features(self, clips: Sequence[np.ndarray]) -> tuple[Any, Any]:
        """Filterbank features of `clips` zero-padded to the longest, and their relative lengths.

        The relative lengths name each clip's own frame count exactly, so the mean
        normalisation, the pooling and the per-clip convolution padding (ecapa_lengths.py)
        all ignore the padding: a clip's embedding does not depend on its batch (tested).
        """
        from services.embedder.encoders.ecapa_lengths import relative_lengths

        torch = self._torch
        longest = max(len(clip) for clip in clips)
        wavs = np.zeros((len(clips), longest), dtype=np.float32)
        for row, clip in enumerate(clips):
            wavs[row, : len(clip)] = clip
        frames = [1 + len(clip) // self._hop for clip in clips]  # the STFT is centred: one frame per hop, plus one
        lens = torch.tensor(relative_lengths(frames, max(frames)), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            batch = torch.from_numpy(wavs).to(self.device)
            feats = self._model.mods.compute_features(batch)
            feats = self._model.mods.mean_var_norm(feats, lens)
        return feats, lens

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        return self.encode_batch([samples])[0]

    def encode_batch(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """One forward pass over several clips; a degenerate result fails the whole call.

        The caller (services/embedder/batching.py) retries a failed batch clip by clip, so
        only the clip at fault fails.
        """
        clips = [np.ascontiguousarray(samples, dtype=np.float32) for samples in batch]
        embeddings = self._forward(*self.features(clips))
        norms = np.linalg.norm(embeddings, axis=1)
        if not np.isfinite(norms).all() or (norms == 0.0).any():
            raise RuntimeError("ECAPA produced a degenerate embedding")
        return [{SPEAKER: (row / norm).astype(np.float32)} for row, norm in zip(embeddings, norms, strict=True)]


def from_settings(settings: EmbedderSettings) -> Encoder:
    """Always on: ECAPA is the default encoder and its weights ship with setup."""
    from services.embedder.encoders.storage import Float16Rounded

    encoder = EcapaEncoder(
        settings.model_dir / "ecapa", device=settings.device, threads=settings.threads, runtime=settings.ecapa_runtime
    )
    return Float16Rounded(encoder) if settings.ecapa_float16 else encoder
