"""IndexTTS2 speaker conditioning: the per-voice half of ``IndexTTS2.infer``, cacheable.

Upstream (github.com/index-tts/index-tts, ``indextts/infer_v2.py`` at commit
ee40fa7d6c6b8a2c7f06105f9f1e65775b74868c) computes four tensors from the reference
clip every time the prompt path changes (lines 446-484), and keeps only the last
speaker, keyed by the path string, on the model object. ``encode`` runs exactly
those calls, on the same sub-modules, in the same order, and returns the tensors
instead of caching them on the instance:

=====================  ===============  ===================================================
name                   shape            rate / source
=====================  ===============  ===================================================
``spk_cond_emb``       (1, T, 1024)     T ~ 50/s: w2v-BERT 2.0 hidden layer 17, normalised
                                        with the semantic mean/std (16 kHz input)
``style``              (1, 192)         CAMPPlus on a mean-removed 80-bin kaldi fbank
``prompt_condition``   (1, T', 512)     s2mel length regulator over the semantic codec's
                                        quantized embedding, stretched to T' frames
``ref_mel``            (1, 80, T')      T' = floor(samples / 256) ~ 86.13/s: 22.05 kHz
                                        log-mel (n_fft 1024, win 1024, hop 256, 80 bands)
=====================  ===============  ===================================================

The clip is cut to 15 s like upstream, so T <= 749 and T' <= 1291. All arrays are
float32; whether to store them as float16 is the caller's choice.

Upstream loads the prompt with ``librosa.load(path)`` (soxr resampling to
22.05 kHz); here the Embedder has already decoded and resampled the clip to
``sample_rate`` (22.05 kHz, polyphase). From 22.05 kHz on, the pipeline is upstream's:
torchaudio ``Resample(22050, 16000)`` for the 16 kHz branch, identity for 22.05 kHz.

Upstream's default emotion reference is the speaker clip itself, re-loaded at 16 kHz
(lines 439-444, 504-519); ``generate`` in ``services/synthesizer/backends/
indextts2_generate.py`` uses ``spk_cond_emb`` for it, so no separate tensor is stored.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from services.common.indextts2 import load_indextts2
from services.common.weights import WeightFile, WeightsError, WeightsManifest, sha256_file

if TYPE_CHECKING:
    import torch

    from services.embedder.encoders.base import Encoder
    from services.embedder.settings import EmbedderSettings

log = logging.getLogger(__name__)

#: Upstream's reference-clip limit (``_load_and_cut_audio(spk_audio_prompt, 15, ...)``).
MAX_PROMPT_SECONDS = 15
SAMPLE_RATE = 22_050
SEMANTIC_RATE = 16_000

#: Bumped when this module's preprocessing changes: it is part of every cache key.
PREPROCESSING_VERSION = "indextts2-v1 22k05-mono cut15s torchaudio-16k w2vbert-l17 campplus lr-prompt mel80"

#: Files under a checkpoint directory laid out as ``hf download IndexTeam/IndexTTS-2`` plus
#: upstream's ``ensure_models_available`` (``hf_cache/``) that determine the encoder's output.
ENCODER_FILES = (
    "config.yaml",
    "wav2vec2bert_stats.pt",
    "s2mel.pth",
    "hf_cache/w2v-bert-2.0/config.json",
    "hf_cache/w2v-bert-2.0/preprocessor_config.json",
    "hf_cache/w2v-bert-2.0/model.safetensors",
    "hf_cache/semantic_codec_model.safetensors",
    "hf_cache/campplus_cn_common.bin",
)

OUTPUT_NAMES = ("spk_cond_emb", "style", "prompt_condition", "ref_mel")


def checkpoint_manifest(model_dir: Path, files: tuple[str, ...] = ENCODER_FILES) -> WeightsManifest:
    """Hash the checkpoint files (several GB: seconds to tens of seconds) into a manifest."""
    missing = [name for name in files if not (model_dir / name).is_file()]
    if missing:
        raise WeightsError(
            f"IndexTTS2 checkpoint in {model_dir} is incomplete: missing {', '.join(missing)}. "
            "Download it with `hf download IndexTeam/IndexTTS-2 --local-dir <dir>` and fetch the auxiliary models "
            "(indextts.utils.model_download.ensure_models_available)."
        )
    entries = tuple(
        WeightFile(name, sha256_file(model_dir / name), (model_dir / name).stat().st_size) for name in files
    )
    return WeightsManifest(version=PREPROCESSING_VERSION, files=entries)


class IndexTTS2Encoder:
    """Encoder protocol over an already-built ``indextts.infer_v2.IndexTTS2`` (real or test stand-in)."""

    name = "indextts2"
    sample_rate = SAMPLE_RATE

    def __init__(self, tts: Any, weights_digest: str) -> None:
        import torch
        import torchaudio

        self._torch = torch
        self._kaldi = torchaudio.compliance.kaldi
        self.tts = tts
        self.weights_digest = weights_digest
        self.device = tts.device
        # Upstream builds Resample(sr, 22050) and Resample(sr, 16000) with sr == 22050 (librosa's
        # default); the first is the identity, the second is reused here (same kernel every call).
        self._to_22k = torchaudio.transforms.Resample(SAMPLE_RATE, 22_050)
        self._to_16k = torchaudio.transforms.Resample(SAMPLE_RATE, SEMANTIC_RATE)

    @classmethod
    def from_checkpoints(
        cls,
        model_dir: Path | str,
        cfg_path: Path | str | None = None,
        device: str | None = None,
        use_fp16: bool = False,
        *,
        digest_files: tuple[str, ...] = ENCODER_FILES,
        **tts_kwargs: Any,
    ) -> IndexTTS2Encoder:
        """Hash the checkpoint, then build the real IndexTTS2 from it without any download.

        ``digest_files`` (relative to ``model_dir``) are hashed into ``weights_digest``; all must
        exist. ``tts_kwargs`` go to ``IndexTTS2`` (e.g. ``use_cuda_kernel``, ``use_deepspeed``);
        ``use_qwen_emo`` defaults to False here: the emotion-text model is not needed to encode,
        and ``aux_paths`` defaults to ``model_dir/hf_cache/...`` so upstream never downloads.
        """
        model_dir = Path(model_dir)
        manifest = checkpoint_manifest(model_dir, digest_files)
        tts_kwargs.setdefault("use_qwen_emo", False)
        tts = load_indextts2(model_dir, cfg_path=cfg_path, device=device, use_fp16=use_fp16, **tts_kwargs)
        log.info("IndexTTS2 loaded from %s on %s (digest %s)", model_dir, tts.device, manifest.digest[:12])
        return cls(tts, manifest.digest)

    def encode(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """Mono float32 at 22.05 kHz in; upstream's four per-voice tensors out, as float32 arrays."""
        torch = self._torch
        tts = self.tts
        wave = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        with torch.inference_mode():
            # infer_v2.py 340-352: (1, N) float32, cut to 15 s at the load rate.
            audio = torch.from_numpy(wave).unsqueeze(0)[:, : int(MAX_PROMPT_SECONDS * SAMPLE_RATE)]
            # 455-456
            audio_22k = self._to_22k(audio)
            audio_16k = self._to_16k(audio)
            # 458-463: w2v-BERT features -> hidden layer 17, normalised (get_emb, 231-240).
            inputs = tts.extract_features(audio_16k, sampling_rate=SEMANTIC_RATE, return_tensors="pt")
            input_features = inputs["input_features"].to(tts.device)
            attention_mask = inputs["attention_mask"].to(tts.device)
            spk_cond_emb = tts.get_emb(input_features, attention_mask)
            # 465-467
            _, s_ref = tts.semantic_codec.quantize(spk_cond_emb)
            ref_mel = tts.mel_fn(audio_22k.to(spk_cond_emb.device).float())
            ref_target_lengths = torch.LongTensor([ref_mel.size(2)]).to(ref_mel.device)
            # 468-473: CAMPPlus style from a mean-removed kaldi fbank of the 16 kHz audio.
            feat = self._kaldi.fbank(audio_16k.to(ref_mel.device), num_mel_bins=80, dither=0, sample_frequency=16000)
            feat = feat - feat.mean(dim=0, keepdim=True)
            style = tts.campplus_model(feat.unsqueeze(0))
            # 475-478
            prompt_condition = tts.s2mel.models["length_regulator"](
                s_ref, ylens=ref_target_lengths, n_quantizers=3, f0=None
            )[0]
            out = {
                "spk_cond_emb": _to_numpy(spk_cond_emb),
                "style": _to_numpy(style),
                "prompt_condition": _to_numpy(prompt_condition),
                "ref_mel": _to_numpy(ref_mel),
            }
        for key, value in out.items():
            if not np.isfinite(value).all():
                raise RuntimeError(f"IndexTTS2 produced non-finite values in {key}")
        return out


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().float().cpu().numpy(), dtype=np.float32)


def from_settings(settings: EmbedderSettings) -> Encoder | None:
    """Only with --indextts2-checkpoints (a GPU box); float16 storage when asked for."""
    if not settings.indextts2_checkpoints:
        return None
    from services.embedder.encoders.storage import Float16Storage

    device = None if settings.device == "auto" else settings.device
    encoder: Encoder = IndexTTS2Encoder.from_checkpoints(settings.indextts2_checkpoints, device=device)
    return Float16Storage(encoder) if settings.indextts2_float16 else encoder
