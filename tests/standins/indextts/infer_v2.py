"""TEST STAND-IN for upstream ``indextts.infer_v2`` -- not the real IndexTTS2.

What this is
    A tiny, deterministic imitation of the *interface* of ``IndexTTS2`` from
    github.com/index-tts/index-tts, file ``indextts/infer_v2.py`` at commit
    ee40fa7d6c6b8a2c7f06105f9f1e65775b74868c (2026-08-18; the file last changed in
    that commit). Every attribute and method that ``IndexTTS2.infer`` touches exists
    here under the same name, with the same call signature, and returns tensors of
    the upstream shapes and dtypes:

    ==========================================  ==========================================
    upstream                                    stand-in here
    ==========================================  ==========================================
    ``extract_features`` SeamlessM4T extractor  kaldi fbank (80 bins) -> stride-2 stack,
                                                (1, T, 160) + attention_mask, T ~ 50/s
    ``semantic_model`` Wav2Vec2BertModel        24 residual low-rank layers, 1024-d,
                                                ``.hidden_states`` has 25 entries
    ``semantic_mean`` / ``semantic_std``        fixed (1024,) tensors
    ``semantic_codec`` RepCodec (MaskGCT)       ``quantize`` -> (codes (1,T), emb (1,T,1024)),
                                                ``quantizer.vq2emb`` -> (1, 1024, L)
    ``campplus_model`` CAMPPlus(80, 192)        stats-pooling MLP -> (1, 192)
    ``s2mel`` MyModel ``.models[...]``          ``length_regulator`` (-> (1, T', 512)),
                                                ``cfm`` (Euler + CFG, ``.estimator``),
                                                ``gpt_layer`` Linear 1280->256->128->1024
    ``gpt`` UnifiedVoice                        ``merge_emovec``, ``inference_speech``
                                                (store_mel_emb -> inference_model.generate),
                                                ``forward`` -> latent (1, L, 1280)
    ``bigvgan`` BigVGAN 22 kHz 80-band x256     transposed conv, (1, 80, F) -> (1, 1, 256 F)
    ``tokenizer`` / ``normalizer``              character-level pieces ("▁A", "B", "."),
                                                same method names
    ``mel_fn`` s2mel mel_spectrogram            the same computation (n_fft 1024, hop 256,
                                                win 1024, 80 mels, 22050 Hz, center=False)
    ``cfg`` OmegaConf of checkpoints/config     the same values, as an attribute dict
    ==========================================  ==========================================

    Weights are small random tensors drawn from fixed seeds: the stand-in loads no
    files, downloads nothing, and a 5 s clip encodes in a few tens of milliseconds.

Where it deliberately differs (so tests can be exact)
    * Sampling: upstream's GPT samples (``do_sample=True``, top-p/top-k) and its CFM
      draws noise from the global RNG, so real outputs are random. Here decoding is
      greedy and the CFM noise comes from a local generator with a fixed seed, so
      a given (voice, text) always gives the same audio. Sampling kwargs are accepted
      and ignored.
    * The number of mel codes depends on the text only (3 per text token + 6), so
      float16-rounded conditioning yields the same audio length.
    * ``librosa.load`` is replaced by soundfile + ``torchaudio.transforms.Resample``
      (librosa is not a dependency here). Consequence: for a clip that is already
      22.05 kHz and at most 15 s, the emotion path's 16 kHz audio is bit-identical
      to the speaker path's, so the default ``emo_cond_emb`` equals ``spk_cond_emb``.
      With the real package the two differ by resampler noise (soxr vs sinc).
    * ``inference_speech`` only supports upstream's IndexTTS-2 path
      (``spk_cond_mode="conformer"``, no ``input_tokens``).

What is mirrored on purpose, hazards included
    * ``infer`` keeps ONE speaker, keyed by the prompt's path string, in
      ``cache_spk_cond`` / ``cache_s2mel_style`` / ``cache_s2mel_prompt`` /
      ``cache_mel`` / ``cache_spk_audio_prompt`` (+ ``cache_emo_cond`` /
      ``cache_emo_audio_prompt``); it is not thread-safe.
    * ``gpt.inference_speech`` hands the prompt embedding to the decoder through
      instance state (``inference_model.store_mel_emb`` then ``generate`` reads
      ``cached_mel_emb`` at every step), exactly the hand-off that makes upstream's
      GPT unsafe to call from two threads at once.
    * ``infer`` passes ``emo_cond_emb`` positionally into ``inference_speech``'s
      ``langs`` slot and uses ``spk_cond_emb.shape[-1]`` (1024) as the conditioning
      "length", as upstream does.

The real path: ``indextts/infer_v2.py`` in the index-tts checkout, imported as
``indextts.infer_v2`` once that checkout is installed (``pip install -e .``).
"""

from __future__ import annotations

import math
import os
import random
import time
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

PCM16_MAX = 32767.0

# The values of IndexTeam/IndexTTS-2 checkpoints/config.yaml that the code reads.
_CONFIG: dict[str, Any] = {
    "dataset": {"bpe_model": "bpe.model", "sample_rate": 24000, "squeeze": False},
    "gpt": {
        "model_dim": 1280,
        "max_mel_tokens": 1815,
        "max_text_tokens": 600,
        "heads": 20,
        "use_mel_codes_as_input": True,
        "mel_length_compression": 1024,
        "layers": 24,
        "number_text_tokens": 12000,
        "number_mel_codes": 8194,
        "start_mel_token": 8192,
        "stop_mel_token": 8193,
        "start_text_token": 0,
        "stop_text_token": 1,
        "train_solo_embeddings": False,
        "condition_type": "conformer_perceiver",
        "condition_module": {
            "output_size": 512,
            "linear_units": 2048,
            "attention_heads": 8,
            "num_blocks": 6,
            "input_layer": "conv2d2",
            "perceiver_mult": 2,
        },
        "emo_condition_module": {
            "output_size": 512,
            "linear_units": 1024,
            "attention_heads": 4,
            "num_blocks": 4,
            "input_layer": "conv2d2",
            "perceiver_mult": 2,
        },
    },
    "semantic_codec": {
        "codebook_size": 8192,
        "hidden_size": 1024,
        "codebook_dim": 8,
        "vocos_dim": 384,
        "vocos_intermediate_dim": 2048,
        "vocos_num_layers": 12,
    },
    "s2mel": {
        "preprocess_params": {
            "sr": 22050,
            "spect_params": {
                "n_fft": 1024,
                "win_length": 1024,
                "hop_length": 256,
                "n_mels": 80,
                "fmin": 0,
                "fmax": "None",
            },
        },
        "dit_type": "DiT",
        "reg_loss_type": "l1",
        "style_encoder": {"dim": 192},
        "length_regulator": {
            "channels": 512,
            "is_discrete": False,
            "in_channels": 1024,
            "content_codebook_size": 2048,
            "sampling_ratios": [1, 1, 1, 1],
            "vector_quantize": False,
            "n_codebooks": 1,
            "quantizer_dropout": 0.0,
            "f0_condition": False,
            "n_f0_bins": 512,
        },
        "DiT": {"hidden_dim": 512, "num_heads": 8, "depth": 13, "in_channels": 80, "content_dim": 512},
    },
    "gpt_checkpoint": "gpt.pth",
    "w2v_stat": "wav2vec2bert_stats.pt",
    "s2mel_checkpoint": "s2mel.pth",
    "emo_matrix": "feat2.pt",
    "spk_matrix": "feat1.pt",
    "emo_num": [3, 17, 2, 8, 4, 5, 10, 24],
    "qwen_emo_path": "qwen0.6bemo4-merge/",
    "vocoder": {"type": "bigvgan", "name": "nvidia/bigvgan_v2_22khz_80band_256x"},
    "version": 2.0,
}


class _Config(dict):
    """A mapping with attribute access, standing in for the OmegaConf DictConfig upstream loads."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def _to_config(tree: Any) -> Any:
    if isinstance(tree, dict):
        return _Config({key: _to_config(value) for key, value in tree.items()})
    if isinstance(tree, list):
        return [_to_config(value) for value in tree]
    return tree


def _seed_parameters(module: nn.Module, seed: int, gain: float = 1.0) -> nn.Module:
    """Deterministic small weights without touching the global RNG."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.ndim == 1:
                if name.endswith("weight"):  # norm scales
                    param.fill_(1.0)
                else:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
            else:
                fan_in = param[0].numel()
                param.copy_(torch.randn(param.shape, generator=generator) * (gain / math.sqrt(fan_in)))
    return module


def _length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size) bool: position < length."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths.reshape(-1, 1)


# ---------------------------------------------------------------------------------------------
# Audio front end: w2v-BERT features, semantic model, semantic codec, CAMPPlus, mel
# ---------------------------------------------------------------------------------------------


class SeamlessM4TFeatureExtractor:
    """Same call as transformers' SeamlessM4TFeatureExtractor: 80-bin kaldi fbank, stride-2 stacked."""

    model_input_names = ("input_features", "attention_mask")

    def __init__(self, sampling_rate: int = 16000, num_mel_bins: int = 80, stride: int = 2) -> None:
        self.sampling_rate = sampling_rate
        self.num_mel_bins = num_mel_bins
        self.stride = stride

    def __call__(
        self,
        raw_speech: Any,
        padding: bool = True,
        pad_to_multiple_of: int | None = 2,
        return_tensors: str | None = None,
        sampling_rate: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(f"expected {self.sampling_rate} Hz audio, got {sampling_rate}")
        wave = np.asarray(raw_speech, dtype=np.float32)
        if wave.ndim == 2:  # kaldi.fbank reads the first channel of a (C, N) waveform
            wave = wave[0]
        fbank = torchaudio.compliance.kaldi.fbank(
            torch.from_numpy(wave * 32768.0).unsqueeze(0),
            num_mel_bins=self.num_mel_bins,
            sample_frequency=self.sampling_rate,
        )
        fbank = (fbank - fbank.mean()) / torch.sqrt(fbank.var(unbiased=False) + 1e-7)
        frames = fbank.shape[0]
        padded = -(-frames // self.stride) * self.stride
        mask = torch.zeros(padded, dtype=torch.int32)
        mask[:frames] = 1
        fbank = F.pad(fbank, (0, 0, 0, padded - frames))
        features = fbank.reshape(1, padded // self.stride, self.num_mel_bins * self.stride)
        attention_mask = mask[:: self.stride].unsqueeze(0)
        if return_tensors == "pt":
            return {"input_features": features, "attention_mask": attention_mask}
        return {"input_features": features.numpy(), "attention_mask": attention_mask.numpy()}


class _W2VLayer(nn.Module):
    def __init__(self, hidden: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, rank)
        self.mix = nn.Conv1d(rank, rank, 3, padding=1, groups=rank)
        self.up = nn.Linear(rank, hidden)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        z = self.mix(self.down(hidden).transpose(1, 2))
        return hidden + self.up(F.gelu(z).transpose(1, 2))


class Wav2Vec2BertModel(nn.Module):
    """``model(input_features=, attention_mask=, output_hidden_states=True).hidden_states[17]`` -> (1, T, 1024)."""

    def __init__(self, feature_dim: int = 160, hidden: int = 1024, num_layers: int = 24, rank: int = 16) -> None:
        super().__init__()
        self.feature_projection = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, hidden))
        self.layers = nn.ModuleList(_W2VLayer(hidden, rank) for _ in range(num_layers))

    def forward(
        self,
        input_features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> SimpleNamespace:
        hidden = self.feature_projection(input_features)
        if attention_mask is not None:
            hidden = hidden * attention_mask.unsqueeze(-1).to(hidden.dtype)
        states = [hidden]
        for layer in self.layers:
            hidden = layer(hidden)
            states.append(hidden)
        return SimpleNamespace(last_hidden_state=hidden, hidden_states=tuple(states) if output_hidden_states else None)


class _FactorizedVQ(nn.Module):
    """One codebook: project to 8 dims, nearest L2-normalised code, project back."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.in_project = nn.Conv1d(input_dim, codebook_dim, 1)
        self.out_project = nn.Conv1d(codebook_dim, input_dim, 1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latents = self.in_project(z)  # (B, d, T)
        batch, dim, steps = latents.shape
        encodings = F.normalize(latents.transpose(1, 2).reshape(-1, dim), dim=-1)
        codebook = F.normalize(self.codebook.weight, dim=-1)
        indices = (encodings @ codebook.T).argmax(-1).reshape(batch, steps)
        return self.vq2emb(indices), indices

    def decode_code(self, embed_id: torch.Tensor) -> torch.Tensor:
        return self.codebook(embed_id).transpose(1, 2)

    def vq2emb(self, vq: torch.Tensor, out_proj: bool = True) -> torch.Tensor:
        emb = self.decode_code(vq)
        return self.out_project(emb) if out_proj else emb


class _ResidualVQ(nn.Module):
    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int, num_quantizers: int = 1) -> None:
        super().__init__()
        self.num_quantizers = num_quantizers
        self.quantizers = nn.ModuleList(
            _FactorizedVQ(input_dim, codebook_size, codebook_dim) for _ in range(num_quantizers)
        )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, None]:
        quantized: torch.Tensor = torch.zeros_like(z)
        residual = z
        indices = []
        for quantizer in self.quantizers:
            z_q, idx = quantizer(residual)
            quantized = quantized + z_q
            residual = residual - z_q
            indices.append(idx)
        zero = torch.zeros((), device=z.device)
        return quantized, torch.stack(indices), zero, zero, None

    def vq2emb(self, vq: torch.Tensor, n_quantizers: int | None = None) -> torch.Tensor:
        count = self.num_quantizers if n_quantizers is None else n_quantizers
        out: torch.Tensor | float = 0.0
        for idx, quantizer in enumerate(self.quantizers[:count]):
            out = out + quantizer.vq2emb(vq[idx])
        assert isinstance(out, torch.Tensor)
        return out


class RepCodec(nn.Module):
    """MaskGCT semantic codec: ``quantize(x (B,T,1024))`` -> (codes (B,T), quantized (B,T,1024))."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        hidden = cfg.hidden_size
        self.encoder = nn.Sequential(nn.Linear(hidden, 32), nn.GELU(), nn.Linear(32, hidden))
        self.quantizer = _ResidualVQ(hidden, cfg.codebook_size, cfg.codebook_dim)

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x).transpose(1, 2)
        quantized, all_indices, _, _, _ = self.quantizer(z)
        if all_indices.shape[0] == 1:
            return all_indices.squeeze(0), quantized.transpose(1, 2)
        return all_indices, quantized.transpose(1, 2)


def build_semantic_codec(cfg: Any) -> RepCodec:
    return RepCodec(cfg).eval()


class CAMPPlus(nn.Module):
    """``campplus_model(feat (B, frames, 80))`` -> (B, 192) global style."""

    def __init__(self, feat_dim: int = 80, embedding_size: int = 192) -> None:
        super().__init__()
        self.frame = nn.Linear(feat_dim, 64)
        self.embed = nn.Linear(128, embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.frame(x))
        stats = torch.cat([h.mean(dim=1), h.std(dim=1, unbiased=False)], dim=-1)
        return self.embed(stats)


_MEL_BASIS: dict[str, torch.Tensor] = {}


def mel_spectrogram(
    y: torch.Tensor,
    n_fft: int,
    num_mels: int,
    sampling_rate: int,
    hop_size: int,
    win_size: int,
    fmin: float,
    fmax: float | None,
    center: bool = False,
) -> torch.Tensor:
    """s2mel's log-mel: reflect-pad (n_fft - hop)/2, |STFT|, slaney mel filters, log(clamp 1e-5)."""
    key = f"{sampling_rate}_{fmax}_{n_fft}_{num_mels}_{y.device}"
    if key not in _MEL_BASIS:
        fbanks = torchaudio.functional.melscale_fbanks(
            n_freqs=n_fft // 2 + 1,
            f_min=float(fmin),
            f_max=float(fmax if fmax is not None else sampling_rate / 2),
            n_mels=num_mels,
            sample_rate=sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        _MEL_BASIS[key] = fbanks.T.contiguous().to(y.device)
    pad = (n_fft - hop_size) // 2
    y = F.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        y,
        n_fft,
        hop_length=hop_size,
        win_length=win_size,
        window=torch.hann_window(win_size, device=y.device),
        center=center,
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    magnitude = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-9)
    return torch.log(torch.clamp(torch.matmul(_MEL_BASIS[key], magnitude), min=1e-5))


# ---------------------------------------------------------------------------------------------
# s2mel: length regulator, CFM, gpt_layer
# ---------------------------------------------------------------------------------------------


class InterpolateRegulator(nn.Module):
    """``length_regulator(x (B,T,1024), ylens=, n_quantizers=, f0=)[0]`` -> (B, ylens.max(), 512)."""

    def __init__(self, channels: int = 512, in_channels: int = 1024, width: int = 32) -> None:
        super().__init__()
        self.content_in_proj = nn.Linear(in_channels, width)
        self.model = nn.Sequential(
            nn.Conv1d(width, width, 3, 1, 1), nn.GroupNorm(1, width), nn.Mish(), nn.Conv1d(width, channels, 1)
        )

    def forward(
        self, x: torch.Tensor, ylens: torch.Tensor, n_quantizers: int | None = None, f0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, None, None, None]:
        x = self.content_in_proj(x)
        size = int(ylens.max())
        mask = _length_mask(ylens, size).unsqueeze(-1)
        x = F.interpolate(x.transpose(1, 2).contiguous(), size=size, mode="nearest")
        out = self.model(x).transpose(1, 2).contiguous()
        return out * mask, ylens, None, None, None


class _Estimator(nn.Module):
    """The DiT's place: (x, prompt_x, x_lens, t, style, mu) -> dphi/dt, all (B, 80, T)."""

    def __init__(self, in_channels: int = 80, content_dim: int = 512, style_dim: int = 192, width: int = 48) -> None:
        super().__init__()
        self.content = nn.Linear(content_dim, 16)
        self.inp = nn.Conv1d(2 * in_channels + 16, width, 3, padding=1)
        self.style = nn.Linear(style_dim, width)
        self.time = nn.Linear(1, width)
        self.out = nn.Conv1d(width, in_channels, 1)
        self.max_seq_length = 0

    def setup_caches(self, max_batch_size: int, max_seq_length: int) -> None:
        self.max_seq_length = max_seq_length

    def forward(
        self,
        x: torch.Tensor,
        prompt_x: torch.Tensor,
        x_lens: torch.Tensor,
        t: torch.Tensor,
        style: torch.Tensor,
        cond: torch.Tensor,
    ) -> torch.Tensor:
        content = self.content(cond).transpose(1, 2)
        hidden = self.inp(torch.cat([x, prompt_x, content], dim=1))
        hidden = hidden + self.style(style).unsqueeze(-1) + self.time(t.reshape(-1, 1).to(x.dtype)).unsqueeze(-1)
        return self.out(F.mish(hidden)) - 0.5 * x


class CFM(nn.Module):
    """``cfm.inference(mu, x_lens, prompt, style, f0, n_timesteps, temperature, inference_cfg_rate)`` -> mel."""

    #: Upstream draws the initial noise from the global RNG; the stand-in uses this fixed seed.
    NOISE_SEED = 20250908

    def __init__(self, args: Any) -> None:
        super().__init__()
        self.in_channels = args.DiT.in_channels
        self.estimator = _Estimator(self.in_channels, args.DiT.content_dim, args.style_encoder.dim)

    @torch.inference_mode()
    def inference(
        self,
        mu: torch.Tensor,
        x_lens: torch.Tensor,
        prompt: torch.Tensor,
        style: torch.Tensor,
        f0: torch.Tensor | None,
        n_timesteps: int,
        temperature: float = 1.0,
        inference_cfg_rate: float = 0.5,
    ) -> torch.Tensor:
        batch, steps = mu.size(0), mu.size(1)
        generator = torch.Generator(device=mu.device).manual_seed(self.NOISE_SEED)
        z = torch.randn([batch, self.in_channels, steps], generator=generator, device=mu.device) * temperature
        t_span = torch.linspace(0, 1, n_timesteps + 1, device=mu.device)
        return self._euler(z, x_lens, prompt, mu, style, t_span, inference_cfg_rate)

    def _euler(
        self,
        x: torch.Tensor,
        x_lens: torch.Tensor,
        prompt: torch.Tensor,
        mu: torch.Tensor,
        style: torch.Tensor,
        t_span: torch.Tensor,
        cfg_rate: float,
    ) -> torch.Tensor:
        prompt_len = prompt.size(-1)
        prompt_x = torch.zeros_like(x)
        prompt_x[..., :prompt_len] = prompt[..., :prompt_len]
        x[..., :prompt_len] = 0
        t = t_span[0]
        for step in range(1, len(t_span)):
            dt = t_span[step] - t_span[step - 1]
            if cfg_rate > 0:
                both = self.estimator(
                    torch.cat([x, x]),
                    torch.cat([prompt_x, torch.zeros_like(prompt_x)]),
                    x_lens,
                    torch.stack([t, t]),
                    torch.cat([style, torch.zeros_like(style)]),
                    torch.cat([mu, torch.zeros_like(mu)]),
                )
                cond_out, uncond_out = both.chunk(2, dim=0)
                velocity = (1.0 + cfg_rate) * cond_out - cfg_rate * uncond_out
            else:
                velocity = self.estimator(x, prompt_x, x_lens, t.unsqueeze(0), style, mu)
            x = x + dt * velocity
            t = t + dt
            x[:, :, :prompt_len] = 0
        return x


class MyModel(nn.Module):
    """s2mel: ``.models['cfm']``, ``.models['length_regulator']``, ``.models['gpt_layer']``."""

    def __init__(self, args: Any, use_emovec: bool = False, use_gpt_latent: bool = False) -> None:
        super().__init__()
        regulator = InterpolateRegulator(args.length_regulator.channels, args.length_regulator.in_channels)
        modules: dict[str, nn.Module] = {"cfm": CFM(args), "length_regulator": regulator}
        if use_gpt_latent:
            modules["gpt_layer"] = nn.Sequential(nn.Linear(1280, 256), nn.Linear(256, 128), nn.Linear(128, 1024))
        self.models = nn.ModuleDict(modules)

    def enable_torch_compile(self) -> None:
        """Upstream compiles the CFM estimator; the stand-in has nothing worth compiling."""


class BigVGAN(nn.Module):
    """``bigvgan(mel (B, 80, F))`` -> (B, 1, 256 F) in [-1, 1]."""

    def __init__(self, num_mels: int = 80, hop: int = 256) -> None:
        super().__init__()
        self.conv_pre = nn.Conv1d(num_mels, 16, 7, padding=3)
        self.ups = nn.ConvTranspose1d(16, 1, kernel_size=2 * hop, stride=hop, padding=hop // 2)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.ups(F.leaky_relu(self.conv_pre(mel), 0.1)))

    def remove_weight_norm(self) -> None:
        """Upstream strips weight norm for inference; the stand-in never had it."""


# ---------------------------------------------------------------------------------------------
# GPT: UnifiedVoice with the inference-model hand-off through instance state
# ---------------------------------------------------------------------------------------------


class _FactorizedEmbedding(nn.Module):
    def __init__(self, count: int, rank: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Embedding(count, rank)
        self.proj = nn.Linear(rank, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.table(ids))


class LearnedPositionEmbeddings(nn.Module):
    def __init__(self, seq_len: int, model_dim: int, rank: int = 16) -> None:
        super().__init__()
        self.emb = _FactorizedEmbedding(seq_len, rank, model_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(torch.arange(x.shape[1], device=x.device))

    def get_fixed_embedding(self, ind: int, dev: torch.device | str) -> torch.Tensor:
        return self.emb(torch.tensor([ind], device=dev)).unsqueeze(0)


class _AttentionPool(nn.Module):
    """Conformer + perceiver's place: (B, T, 1024) + mask -> (B, latents, width)."""

    def __init__(self, in_dim: int, width: int, latents: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, width)
        self.queries = nn.Parameter(torch.zeros(latents, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keys = torch.tanh(self.proj(x))  # (B, T, w)
        scores = torch.einsum("lw,btw->blt", self.queries, keys) / math.sqrt(keys.shape[-1])
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        return torch.softmax(scores, dim=-1) @ keys


class GPT2InferenceModel(nn.Module):
    """Decoder wrapper: ``store_mel_emb`` then ``generate`` reads ``cached_mel_emb`` -- shared state, like upstream."""

    def __init__(self, unified: UnifiedVoice, kv_cache: bool = False) -> None:
        super().__init__()
        self.transformer = unified.gpt
        self.embeddings = unified.mel_embedding
        self.text_pos_embedding = unified.text_pos_embedding
        self.context = unified.context_proj
        self.lm_head = unified.mel_head
        self.kv_cache = kv_cache
        self.prefix_len = unified.cond_num + 2  # speaker latents + two speed embeddings
        self.start_mel_token = unified.start_mel_token
        self.stop_mel_token = unified.stop_mel_token
        self.cached_mel_emb: torch.Tensor | None = None

    def store_mel_emb(self, mel_emb: torch.Tensor) -> None:
        self.cached_mel_emb = mel_emb

    def _step_context(self) -> tuple[torch.Tensor, int]:
        # Read at every step, as upstream's forward reads cached_mel_emb (its length) at every step.
        cached = self.cached_mel_emb
        assert cached is not None, "store_mel_emb must run first"
        return self.context(cached.mean(dim=1)), cached.shape[1] - self.prefix_len - 2

    def generate(
        self,
        inputs: torch.Tensor,
        bos_token_id: int | None = None,
        pad_token_id: int | None = None,
        eos_token_id: int | None = None,
        attention_mask: torch.Tensor | None = None,
        max_length: int | None = None,
        logits_processor: Any = None,
        num_return_sequences: int = 1,
        **sampling: Any,
    ) -> torch.Tensor:
        """Greedy decoding (sampling kwargs are accepted and ignored); returns inputs + codes + stop."""
        stop = self.stop_mel_token if eos_token_id is None else eos_token_id
        budget = (max_length or inputs.shape[1] + 1) - inputs.shape[1]
        context, text_len = self._step_context()
        state = torch.tanh(context)
        previous = torch.full((inputs.shape[0],), self.start_mel_token, dtype=torch.long, device=inputs.device)
        codes = []
        for step in range(budget):
            context, text_len = self._step_context()
            if step >= 3 * text_len + 6:
                codes.append(torch.full_like(previous, stop))
                break
            state = self.transformer(self.embeddings.table(previous) + context, state)
            logits = self.lm_head(state)
            logits[:, self.start_mel_token :] = float("-inf")  # start/stop only where upstream would sample them
            previous = logits.argmax(dim=-1)
            codes.append(previous)
        generated = torch.stack(codes, dim=1) if codes else inputs[:, :0]
        return torch.cat([inputs, generated.to(inputs.dtype)], dim=1)


class UnifiedVoice(nn.Module):
    """IndexTTS-2's GPT with upstream's constructor and inference/forward signatures; tiny inside."""

    def __init__(
        self,
        layers: int = 8,
        model_dim: int = 512,
        heads: int = 8,
        max_text_tokens: int = 120,
        max_mel_tokens: int = 250,
        max_conditioning_inputs: int = 1,
        mel_length_compression: int = 1024,
        number_text_tokens: int = 256,
        start_text_token: int = 0,
        stop_text_token: int = 1,
        number_mel_codes: int = 8194,
        start_mel_token: int = 8192,
        stop_mel_token: int = 8193,
        train_solo_embeddings: bool = False,
        use_mel_codes_as_input: bool = True,
        checkpointing: bool = True,
        types: int = 1,
        condition_num_latent: int = 32,
        condition_type: str = "perceiver",
        condition_module: Any = None,
        emo_condition_module: Any = None,
        use_accel: bool = False,
        spk_cond_mode: str = "conformer",
    ) -> None:
        super().__init__()
        width = 32
        self.layers = layers
        self.model_dim = model_dim
        self.heads = heads
        self.max_text_tokens = max_text_tokens
        self.max_mel_tokens = max_mel_tokens
        self.number_text_tokens = number_text_tokens
        self.start_text_token = start_text_token
        self.stop_text_token = stop_text_token
        self.number_mel_codes = number_mel_codes
        self.start_mel_token = start_mel_token
        self.stop_mel_token = stop_mel_token
        self.condition_type = condition_type
        self.cond_num = condition_num_latent
        self.spk_cond_mode = spk_cond_mode
        self.use_accel = use_accel
        self.accel_engine = None

        self.conditioning_encoder = _AttentionPool(1024, width, condition_num_latent)
        self.perceiver_encoder = nn.Linear(width, model_dim)
        self.emo_conditioning_encoder = _AttentionPool(1024, width, 1)
        self.emo_perceiver_encoder = nn.Linear(width, 1024)
        self.emovec_layer = nn.Linear(1024, model_dim)
        self.emo_layer = nn.Linear(model_dim, model_dim)
        self.speed_emb = nn.Embedding(2, model_dim)
        self.text_embedding = _FactorizedEmbedding(number_text_tokens * types + 1, 16, model_dim)
        self.text_pos_embedding = LearnedPositionEmbeddings(max_text_tokens + 2, model_dim)
        self.mel_embedding = _FactorizedEmbedding(number_mel_codes, width, model_dim)
        self.mel_pos_embedding = LearnedPositionEmbeddings(max_mel_tokens + 2 + max_conditioning_inputs, model_dim)
        self.gpt = nn.GRUCell(width, width)  # upstream: the GPT-2 transformer stack
        self.context_proj = nn.Linear(model_dim, width)
        self.final_norm = nn.LayerNorm(model_dim)
        self.mel_head = nn.Linear(width, number_mel_codes)

    def post_init_gpt2_config(self, use_deepspeed: bool = False, kv_cache: bool = False, half: bool = False) -> None:
        self.inference_model = GPT2InferenceModel(self, kv_cache=kv_cache).eval()

    def get_conditioning(
        self, speech_conditioning_input: torch.Tensor, cond_mel_lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = speech_conditioning_input.transpose(1, 2)  # (B, T, 1024)
        lengths = cond_mel_lengths if cond_mel_lengths is not None else torch.tensor([x.shape[1]], device=x.device)
        return self.perceiver_encoder(self.conditioning_encoder(x, _length_mask(lengths, x.shape[1])))

    def get_emo_conditioning(
        self, speech_conditioning_input: torch.Tensor, cond_mel_lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = speech_conditioning_input.transpose(1, 2)
        lengths = cond_mel_lengths if cond_mel_lengths is not None else torch.tensor([x.shape[1]], device=x.device)
        return self.emo_perceiver_encoder(self.emo_conditioning_encoder(x, _length_mask(lengths, x.shape[1]))).squeeze(
            1
        )

    def get_emovec(self, emo_speech_conditioning_latent: torch.Tensor, emo_cond_lengths: torch.Tensor) -> torch.Tensor:
        pooled = self.get_emo_conditioning(emo_speech_conditioning_latent.transpose(1, 2), emo_cond_lengths)
        return self.emo_layer(self.emovec_layer(pooled))

    def merge_emovec(
        self,
        speech_conditioning_latent: torch.Tensor,
        emo_speech_conditioning_latent: torch.Tensor,
        cond_lengths: torch.Tensor,
        emo_cond_lengths: torch.Tensor,
        alpha: float = 1.0,
    ) -> torch.Tensor:
        emo_vec = self.get_emovec(emo_speech_conditioning_latent, emo_cond_lengths)
        base_vec = self.get_emovec(speech_conditioning_latent, cond_lengths)
        return base_vec + alpha * (emo_vec - base_vec)

    def _speed_pair(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch, dtype=torch.long, device=device)
        return self.speed_emb(torch.ones_like(zeros)), self.speed_emb(zeros)

    def prepare_gpt_inputs(
        self, conditional_latents: torch.Tensor, text_inputs: torch.Tensor, langs: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if text_inputs.shape[0] != 1:
            raise NotImplementedError("the stand-in decodes one text at a time, as IndexTTS2.infer does")
        device = text_inputs.device
        tokens = text_inputs[0]
        tokens = tokens[(tokens != self.stop_text_token) & (tokens != self.start_text_token)]
        tokens = F.pad(F.pad(tokens, (1, 0), value=self.start_text_token), (0, 1), value=self.stop_text_token)
        positions = torch.arange(tokens.numel(), device=device)
        text_emb = self.text_embedding(tokens.long()) + self.text_pos_embedding.emb(positions)
        mel_emb = torch.cat([conditional_latents[0], text_emb.to(conditional_latents.dtype)]).unsqueeze(0)
        fake_inputs = torch.ones((1, mel_emb.shape[1] + 1), dtype=torch.long, device=device)
        fake_inputs[:, -1] = self.start_mel_token
        return fake_inputs, mel_emb, torch.ones_like(fake_inputs)

    def inference_speech(
        self,
        speech_condition: torch.Tensor,
        text_inputs: torch.Tensor,
        langs: torch.Tensor | None = None,
        emo_speech_condition: torch.Tensor | None = None,
        cond_lengths: torch.Tensor | None = None,
        emo_cond_lengths: torch.Tensor | None = None,
        emo_vec: torch.Tensor | None = None,
        use_speed: bool = False,
        campplus_embedding: torch.Tensor | None = None,
        wav: Any = None,
        input_tokens: torch.Tensor | None = None,
        num_return_sequences: int = 1,
        max_generate_length: int | None = None,
        typical_sampling: bool = False,
        typical_mass: float = 0.9,
        **hf_generate_kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.spk_cond_mode == "campplus" or input_tokens is not None:
            raise NotImplementedError("the stand-in mirrors IndexTTS-2's conformer path only")
        if speech_condition.ndim == 2:
            speech_condition = speech_condition.unsqueeze(0)
        if emo_speech_condition is None:
            emo_speech_condition = speech_condition
        if cond_lengths is None:
            cond_lengths = torch.tensor([speech_condition.shape[-1]], device=speech_condition.device)
        if emo_cond_lengths is None:
            emo_cond_lengths = torch.tensor([emo_speech_condition.shape[-1]], device=speech_condition.device)
        latent = self.get_conditioning(speech_condition.transpose(1, 2), cond_lengths)
        if emo_vec is None:
            emo_vec = self.get_emovec(emo_speech_condition, emo_cond_lengths)
        half, zero = self._speed_pair(text_inputs.size(0), text_inputs.device)
        conds_latent = torch.cat([latent + emo_vec.unsqueeze(1), half.unsqueeze(1), zero.unsqueeze(1)], dim=1)
        input_ids, inputs_embeds, attention_mask = self.prepare_gpt_inputs(conds_latent, text_inputs, langs)
        self.inference_model.store_mel_emb(inputs_embeds)
        trunc_index = input_ids.shape[1]
        max_length = trunc_index + (self.max_mel_tokens - 1 if max_generate_length is None else max_generate_length)
        output = self.inference_model.generate(
            input_ids,
            bos_token_id=self.start_mel_token,
            pad_token_id=self.stop_mel_token,
            eos_token_id=self.stop_mel_token,
            attention_mask=attention_mask,
            max_length=max_length,
            num_return_sequences=num_return_sequences,
            **hf_generate_kwargs,
        )
        return output[:, trunc_index:], latent

    def forward(
        self,
        speech_conditioning_latent: torch.Tensor,
        text_inputs: torch.Tensor,
        text_lengths: torch.Tensor,
        mel_codes: torch.Tensor,
        mel_codes_lengths: torch.Tensor,
        emo_speech_conditioning_latent: torch.Tensor,
        cond_mel_lengths: torch.Tensor | None = None,
        emo_cond_mel_lengths: torch.Tensor | None = None,
        emo_vec: torch.Tensor | None = None,
        use_speed: torch.Tensor | None = None,
        do_spk_cond: bool = False,
    ) -> torch.Tensor:
        """Latent for each code: (B, L, model_dim)."""
        if emo_vec is None:
            emo_vec = self.get_emovec(emo_speech_conditioning_latent, emo_cond_mel_lengths)
        half, zero = self._speed_pair(speech_conditioning_latent.size(0), speech_conditioning_latent.device)
        conds = torch.cat(
            [speech_conditioning_latent + emo_vec.unsqueeze(1), half.unsqueeze(1), zero.unsqueeze(1)], dim=1
        )
        text_emb = self.text_embedding(text_inputs.long()) + self.text_pos_embedding(text_inputs)
        mel_emb = self.mel_embedding(mel_codes.long()) + self.mel_pos_embedding(mel_codes)
        running = mel_emb.cumsum(dim=1) / torch.arange(1, mel_emb.shape[1] + 1, device=mel_emb.device).reshape(1, -1, 1)
        hidden = mel_emb + running + conds.mean(dim=1, keepdim=True) + text_emb.mean(dim=1, keepdim=True)
        return self.final_norm(hidden)


# ---------------------------------------------------------------------------------------------
# Text front end and the emotion-text model
# ---------------------------------------------------------------------------------------------


class TextNormalizer:
    """Upper-cases and folds punctuation; upstream runs WeTextProcessing plus a glossary."""

    _FOLD = str.maketrans({";": ",", ":": ",", "\u201c": "'", "\u201d": "'", '"': "'", "\n": " "})

    def __init__(self, enable_glossary: bool = False) -> None:
        self.enable_glossary = enable_glossary
        self.term_glossary: dict[str, Any] = {}

    def load(self) -> None:
        """Upstream builds its FST normalisers here; nothing to load in the stand-in."""

    def load_glossary_from_yaml(self, glossary_path: str) -> bool:
        return False

    def normalize(self, text: str) -> str:
        return " ".join(text.translate(self._FOLD).upper().split())


class TextTokenizer:
    """SentencePiece-like pieces, one per character, "▁" marking a word start."""

    punctuation_marks_tokens = [".", "!", "?", "▁.", "▁?", "▁..."]
    _CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.,!?-…"

    def __init__(self, vocab_file: str, normalizer: TextNormalizer | None = None) -> None:
        self.vocab_file = vocab_file
        self.normalizer = normalizer
        pieces = ["<s>", "</s>", "<unk>"]
        for char in self._CHARS:
            pieces += [char, "▁" + char]
        self._pieces = pieces
        self._ids = {piece: index for index, piece in enumerate(pieces)}

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    @property
    def unk_token(self) -> str:
        return "<unk>"

    @property
    def bos_token_id(self) -> int:
        return 0

    @property
    def eos_token_id(self) -> int:
        return 1

    @property
    def unk_token_id(self) -> int:
        return 2

    def convert_tokens_to_ids(self, tokens: list[str] | str) -> list[int]:
        if isinstance(tokens, str):
            tokens = [tokens]
        return [self._ids.get(token, self.unk_token_id) for token in tokens]

    def convert_ids_to_tokens(self, ids: list[int] | int) -> list[str] | str:
        if isinstance(ids, int):
            return self._pieces[ids]
        return [self._pieces[i] for i in ids]

    def tokenize(self, text: str) -> list[str]:
        if self.normalizer:
            text = self.normalizer.normalize(text)
        tokens, word_start = [], True
        for char in text:
            if char.isspace():
                word_start = True
                continue
            tokens.append(("▁" if word_start else "") + char)
            word_start = False
        return tokens

    def split_segments(
        self, tokenized: list[str], max_text_tokens_per_segment: int = 120, quick_streaming_tokens: int = 0
    ) -> list[list[str]]:
        """Sentences (ending in . ! ?), hard-split at the limit, then greedily merged up to it."""
        limit = max_text_tokens_per_segment
        sentences: list[list[str]] = []
        current: list[str] = []
        for token in tokenized:
            current.append(token)
            if token in self.punctuation_marks_tokens and len(current) > 2:
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
        pieces = [sentence[i : i + limit] for sentence in sentences for i in range(0, len(sentence), limit)]
        merged: list[list[str]] = []
        seen = 0
        for piece in pieces:
            seen += len(piece)
            joined = len(merged[-1]) + len(piece) if merged else None
            if joined is not None and joined <= limit and (seen > quick_streaming_tokens or joined <= limit / 2):
                merged[-1] = merged[-1] + piece
            else:
                merged.append(piece)
        return merged


class QwenEmotion:
    """Keyword lookup with QwenEmotion's output contract: 8 scores in upstream's order, calm by default."""

    ORDER = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")

    def __init__(self, model_dir: str) -> None:
        self.model_dir = model_dir

    def inference(self, text_input: str) -> dict[str, float]:
        lowered = text_input.lower()
        scores = {name: (1.0 if name in lowered else 0.0) for name in self.ORDER}
        if not any(scores.values()):
            scores["calm"] = 1.0
        return scores


def find_most_similar_cosine(query_vector: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.argmax(F.cosine_similarity(query_vector.float(), matrix.float(), dim=1))


def _load_mono(path: str, sr: int | None) -> tuple[torch.Tensor, int]:
    """librosa.load(path, sr=sr or 22050) stand-in: mono float32, resampled with torchaudio."""
    target = sr or 22050
    data, native = sf.read(path, dtype="float32", always_2d=True)
    audio = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1))).unsqueeze(0)
    if native != target:
        audio = torchaudio.transforms.Resample(native, target)(audio)
    return audio, target


# ---------------------------------------------------------------------------------------------
# IndexTTS2
# ---------------------------------------------------------------------------------------------


class IndexTTS2:
    """Stand-in with upstream's constructor, attributes and ``infer`` / ``infer_generator``."""

    def __init__(
        self,
        cfg_path: str = "checkpoints/config.yaml",
        model_dir: str = "checkpoints",
        use_fp16: bool = False,
        device: str | None = None,
        use_cuda_kernel: bool | None = None,
        use_deepspeed: bool = False,
        use_accel: bool = False,
        use_torch_compile: bool = False,
        use_qwen_emo: bool = True,
        aux_paths: dict[str, str] | None = None,
    ) -> None:
        if device is not None:
            self.device = device
            self.use_fp16 = False if device == "cpu" else use_fp16
            self.use_cuda_kernel = bool(use_cuda_kernel) and device.startswith("cuda")
        elif torch.cuda.is_available():
            self.device = "cuda:0"
            self.use_fp16 = use_fp16
            self.use_cuda_kernel = use_cuda_kernel is None or use_cuda_kernel
        else:
            self.device = "cpu"
            self.use_fp16 = False
            self.use_cuda_kernel = False

        self.cfg = _to_config(_CONFIG)  # upstream: OmegaConf.load(cfg_path); nothing is read here
        self.cfg_path = cfg_path
        self.model_dir = model_dir
        self.dtype = torch.float16 if self.use_fp16 else None
        self.stop_mel_token = self.cfg.gpt.stop_mel_token
        self.use_accel = use_accel
        self.use_torch_compile = use_torch_compile
        self.qwen_emo = QwenEmotion(os.path.join(model_dir, self.cfg.qwen_emo_path)) if use_qwen_emo else None

        self.gpt = _seed_parameters(UnifiedVoice(**self.cfg.gpt, use_accel=use_accel), 101).to(self.device)
        self.gpt_path = os.path.join(model_dir, self.cfg.gpt_checkpoint)
        self.gpt = self.gpt.eval().half() if self.use_fp16 else self.gpt.eval()
        self.gpt.post_init_gpt2_config(use_deepspeed=use_deepspeed, kv_cache=True, half=self.use_fp16)

        self.extract_features = SeamlessM4TFeatureExtractor()
        self.semantic_model = _seed_parameters(Wav2Vec2BertModel(), 102).to(self.device).eval()
        stats = torch.Generator().manual_seed(103)
        self.semantic_mean = (torch.randn(1024, generator=stats) * 0.05).to(self.device)
        self.semantic_std = torch.sqrt(0.5 + torch.rand(1024, generator=stats)).to(self.device)

        self.semantic_codec = _seed_parameters(build_semantic_codec(self.cfg.semantic_codec), 104).to(self.device)
        self.semantic_codec.eval()

        self.s2mel = _seed_parameters(MyModel(self.cfg.s2mel, use_gpt_latent=True), 105).to(self.device)
        self.s2mel.models["cfm"].estimator.setup_caches(max_batch_size=1, max_seq_length=8192)
        if self.use_torch_compile:
            self.s2mel.enable_torch_compile()
        self.s2mel.eval()

        self.campplus_model = _seed_parameters(CAMPPlus(feat_dim=80, embedding_size=192), 106).to(self.device).eval()

        self.bigvgan = _seed_parameters(BigVGAN(), 107).to(self.device)
        self.bigvgan.remove_weight_norm()
        self.bigvgan.eval()

        self.bpe_path = os.path.join(model_dir, self.cfg.dataset["bpe_model"])
        self.normalizer = TextNormalizer(enable_glossary=True)
        self.normalizer.load()
        self.tokenizer = TextTokenizer(self.bpe_path, self.normalizer)
        self.glossary_path = os.path.join(model_dir, "glossary.yaml")  # never read by the stand-in

        matrices = torch.Generator().manual_seed(108)
        rows = sum(self.cfg.emo_num)
        self.emo_num = list(self.cfg.emo_num)
        self.emo_matrix = torch.split(
            (torch.randn(rows, 1280, generator=matrices) * 0.05).to(self.device), self.emo_num
        )
        self.spk_matrix = torch.split(torch.randn(rows, 192, generator=matrices).to(self.device), self.emo_num)

        spect = self.cfg.s2mel["preprocess_params"]["spect_params"]
        mel_fn_args = {
            "n_fft": spect["n_fft"],
            "win_size": spect["win_length"],
            "hop_size": spect["hop_length"],
            "num_mels": spect["n_mels"],
            "sampling_rate": self.cfg.s2mel["preprocess_params"]["sr"],
            "fmin": spect.get("fmin", 0),
            "fmax": None if spect.get("fmax", "None") == "None" else 8000,
            "center": False,
        }
        self.mel_fn = lambda x: mel_spectrogram(x, **mel_fn_args)

        # The single-speaker cache, keyed by the prompt's path string (not thread-safe, as upstream).
        self.cache_spk_cond = None
        self.cache_s2mel_style = None
        self.cache_s2mel_prompt = None
        self.cache_spk_audio_prompt = None
        self.cache_emo_cond = None
        self.cache_emo_audio_prompt = None
        self.cache_mel = None

        self.gr_progress = None
        self.model_version = self.cfg.version if hasattr(self.cfg, "version") else None

    @torch.no_grad()
    def get_emb(self, input_features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.semantic_model(
            input_features=input_features, attention_mask=attention_mask, output_hidden_states=True
        )
        return (out.hidden_states[17] - self.semantic_mean) / self.semantic_std

    def remove_long_silence(
        self, codes: torch.Tensor, silent_token: int = 52, max_consecutive: int = 30
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut codes at the stop token; where silence tokens are too many, keep at most 10 in a row."""
        kept_rows, lengths = [], []
        for row in codes:
            stops = (row == self.stop_mel_token).nonzero(as_tuple=False)
            length = int(stops[0]) if len(stops) else row.numel()
            row = row[:length]
            if int((row == silent_token).sum()) > max_consecutive:
                keep, run = [], 0
                for index, code in enumerate(row.tolist()):
                    run = run + 1 if code == silent_token else 0
                    if run <= 10:
                        keep.append(index)
                row = row[keep]
            kept_rows.append(row)
            lengths.append(row.numel())
        width = max(lengths)
        out = torch.full((len(kept_rows), width), self.stop_mel_token, dtype=codes.dtype, device=codes.device)
        for index, row in enumerate(kept_rows):
            out[index, : row.numel()] = row
        return out, torch.tensor(lengths, dtype=torch.long, device=codes.device)

    def interval_silence(self, wavs: list[torch.Tensor], sampling_rate: int = 22050, interval_silence: int = 200):
        if not wavs or interval_silence <= 0:
            return wavs
        return torch.zeros(wavs[0].size(0), int(sampling_rate * interval_silence / 1000.0))

    def insert_interval_silence(
        self, wavs: list[torch.Tensor], sampling_rate: int = 22050, interval_silence: int = 200
    ) -> list[torch.Tensor]:
        if not wavs or interval_silence <= 0:
            return wavs
        silence = torch.zeros(wavs[0].size(0), int(sampling_rate * interval_silence / 1000.0))
        out: list[torch.Tensor] = []
        for index, wav in enumerate(wavs):
            if index:
                out.append(silence)
            out.append(wav)
        return out

    def _set_gr_progress(self, value: float, desc: str) -> None:
        if self.gr_progress is not None:
            self.gr_progress(value, desc=desc)

    def _load_and_cut_audio(
        self, audio_path: str, max_audio_length_seconds: float, verbose: bool = False, sr: int | None = None
    ) -> tuple[torch.Tensor, int]:
        audio, sr = _load_mono(audio_path, sr)
        limit = int(max_audio_length_seconds * sr)
        if audio.shape[1] > limit:
            audio = audio[:, :limit]
        return audio, sr

    def normalize_emo_vec(self, emo_vector: list[float], apply_bias: bool = True) -> list[float]:
        if apply_bias:
            bias = [0.9375, 0.875, 1.0, 1.0, 0.9375, 0.9375, 0.6875, 0.5625]
            emo_vector = [value * weight for value, weight in zip(emo_vector, bias, strict=False)]
        total = sum(emo_vector)
        if total > 0.8:
            emo_vector = [value * 0.8 / total for value in emo_vector]
        return emo_vector

    def infer(
        self,
        spk_audio_prompt: str,
        text: str,
        output_path: str | None,
        emo_audio_prompt: str | None = None,
        emo_alpha: float = 1.0,
        emo_vector: list[float] | None = None,
        use_emo_text: bool = False,
        emo_text: str | None = None,
        use_random: bool = False,
        interval_silence: int = 200,
        verbose: bool = False,
        max_text_tokens_per_segment: int = 120,
        stream_return: bool = False,
        more_segment_before: int = 0,
        **generation_kwargs: Any,
    ) -> Any:
        """Upstream returns output_path when it wrote a file, else (22050, int16 array of shape (N, 1))."""
        # As upstream, more_segment_before lands positionally in infer_generator's quick_streaming_tokens.
        generator = self.infer_generator(
            spk_audio_prompt,
            text,
            output_path,
            emo_audio_prompt,
            emo_alpha,
            emo_vector,
            use_emo_text,
            emo_text,
            use_random,
            interval_silence,
            verbose,
            max_text_tokens_per_segment,
            stream_return,
            more_segment_before,
            **generation_kwargs,
        )
        if stream_return:
            return generator
        for result in generator:  # upstream: list(...)[0], None when nothing was yielded
            return result
        return None

    def infer_generator(
        self,
        spk_audio_prompt: str,
        text: str,
        output_path: str | None,
        emo_audio_prompt: str | None = None,
        emo_alpha: float = 1.0,
        emo_vector: list[float] | None = None,
        use_emo_text: bool = False,
        emo_text: str | None = None,
        use_random: bool = False,
        interval_silence: int = 200,
        verbose: bool = False,
        max_text_tokens_per_segment: int = 120,
        stream_return: bool = False,
        quick_streaming_tokens: int = 0,
        **generation_kwargs: Any,
    ):
        start_time = time.perf_counter()
        if use_emo_text or emo_vector is not None:
            emo_audio_prompt = None
        if use_emo_text:
            if self.qwen_emo is None:
                raise RuntimeError("use_emo_text=True requires QwenEmotion (use_qwen_emo=True)")
            emo_vector = list(self.qwen_emo.inference(text if emo_text is None else emo_text).values())
        if emo_vector is not None:
            scale = max(0.0, min(1.0, emo_alpha))
            if scale != 1.0:
                emo_vector = [int(x * scale * 10000) / 10000 for x in emo_vector]
        if emo_audio_prompt is None:
            emo_audio_prompt = spk_audio_prompt
            emo_alpha = 1.0

        if self.cache_spk_cond is None or self.cache_spk_audio_prompt != spk_audio_prompt:
            self.cache_spk_cond = self.cache_s2mel_style = self.cache_s2mel_prompt = self.cache_mel = None
            audio, sr = self._load_and_cut_audio(spk_audio_prompt, 15, verbose)
            audio_22k = torchaudio.transforms.Resample(sr, 22050)(audio)
            audio_16k = torchaudio.transforms.Resample(sr, 16000)(audio)
            inputs = self.extract_features(audio_16k, sampling_rate=16000, return_tensors="pt")
            spk_cond_emb = self.get_emb(
                inputs["input_features"].to(self.device), inputs["attention_mask"].to(self.device)
            )
            _, s_ref = self.semantic_codec.quantize(spk_cond_emb)
            ref_mel = self.mel_fn(audio_22k.to(spk_cond_emb.device).float())
            ref_target_lengths = torch.LongTensor([ref_mel.size(2)]).to(ref_mel.device)
            feat = torchaudio.compliance.kaldi.fbank(
                audio_16k.to(ref_mel.device), num_mel_bins=80, dither=0, sample_frequency=16000
            )
            feat = feat - feat.mean(dim=0, keepdim=True)
            style = self.campplus_model(feat.unsqueeze(0))
            prompt_condition = self.s2mel.models["length_regulator"](
                s_ref, ylens=ref_target_lengths, n_quantizers=3, f0=None
            )[0]
            self.cache_spk_cond = spk_cond_emb
            self.cache_s2mel_style = style
            self.cache_s2mel_prompt = prompt_condition
            self.cache_spk_audio_prompt = spk_audio_prompt
            self.cache_mel = ref_mel
        else:
            style = self.cache_s2mel_style
            prompt_condition = self.cache_s2mel_prompt
            spk_cond_emb = self.cache_spk_cond
            ref_mel = self.cache_mel

        if emo_vector is not None:
            weight_vector = torch.tensor(emo_vector, device=self.device)
            if use_random:
                picks = [random.randint(0, count - 1) for count in self.emo_num]
            else:
                picks = [find_most_similar_cosine(style, rows) for rows in self.spk_matrix]
            chosen = torch.cat([rows[pick].unsqueeze(0) for pick, rows in zip(picks, self.emo_matrix, strict=True)])
            emovec_mat = torch.sum(weight_vector.unsqueeze(1) * chosen, 0).unsqueeze(0)

        if self.cache_emo_cond is None or self.cache_emo_audio_prompt != emo_audio_prompt:
            self.cache_emo_cond = None
            emo_audio, _ = self._load_and_cut_audio(emo_audio_prompt, 15, verbose, sr=16000)
            emo_inputs = self.extract_features(emo_audio, sampling_rate=16000, return_tensors="pt")
            emo_cond_emb = self.get_emb(
                emo_inputs["input_features"].to(self.device), emo_inputs["attention_mask"].to(self.device)
            )
            self.cache_emo_cond = emo_cond_emb
            self.cache_emo_audio_prompt = emo_audio_prompt
        else:
            emo_cond_emb = self.cache_emo_cond

        text_tokens_list = self.tokenizer.tokenize(text)
        segments = self.tokenizer.split_segments(
            text_tokens_list, max_text_tokens_per_segment, quick_streaming_tokens=quick_streaming_tokens
        )
        generation_kwargs.pop("do_sample", True)  # upstream pops it, then always passes do_sample=True
        top_p = generation_kwargs.pop("top_p", 0.8)
        top_k = generation_kwargs.pop("top_k", 30)
        temperature = generation_kwargs.pop("temperature", 0.8)
        length_penalty = generation_kwargs.pop("length_penalty", 0.0)
        num_beams = generation_kwargs.pop("num_beams", 3)
        repetition_penalty = generation_kwargs.pop("repetition_penalty", 10.0)
        max_mel_tokens = generation_kwargs.pop("max_mel_tokens", 1500)
        sampling_rate = 22050

        wavs: list[torch.Tensor] = []
        silence = None
        for sent in segments:
            text_tokens = torch.tensor(
                self.tokenizer.convert_tokens_to_ids(sent), dtype=torch.int32, device=self.device
            ).unsqueeze(0)
            with torch.no_grad():
                device_type = text_tokens.device.type
                with torch.amp.autocast(device_type, enabled=self.dtype is not None, dtype=self.dtype):
                    emovec = self.gpt.merge_emovec(
                        spk_cond_emb,
                        emo_cond_emb,
                        torch.tensor([spk_cond_emb.shape[-1]], device=text_tokens.device),
                        torch.tensor([emo_cond_emb.shape[-1]], device=text_tokens.device),
                        alpha=emo_alpha,
                    )
                    if emo_vector is not None:
                        emovec = emovec_mat + (1 - torch.sum(weight_vector)) * emovec
                    codes, speech_conditioning_latent = self.gpt.inference_speech(
                        spk_cond_emb,
                        text_tokens,
                        emo_cond_emb,
                        cond_lengths=torch.tensor([spk_cond_emb.shape[-1]], device=text_tokens.device),
                        emo_cond_lengths=torch.tensor([emo_cond_emb.shape[-1]], device=text_tokens.device),
                        emo_vec=emovec,
                        do_sample=True,
                        top_p=top_p,
                        top_k=top_k,
                        temperature=temperature,
                        num_return_sequences=1,
                        length_penalty=length_penalty,
                        num_beams=num_beams,
                        repetition_penalty=repetition_penalty,
                        max_generate_length=max_mel_tokens,
                        **generation_kwargs,
                    )
                if (codes[:, -1] != self.stop_mel_token).any():
                    warnings.warn("generation stopped at max_mel_tokens", RuntimeWarning, stacklevel=2)
                code_lens = []
                for code in codes:
                    stops = (code == self.stop_mel_token).nonzero(as_tuple=False)
                    code_lens.append(int(stops[0][0]) if len(stops) else len(code))
                codes = codes[:, : max(code_lens)]
                code_lens = torch.LongTensor(code_lens).to(self.device)

                use_speed = torch.zeros(spk_cond_emb.size(0)).to(spk_cond_emb.device).long()
                with torch.amp.autocast(device_type, enabled=self.dtype is not None, dtype=self.dtype):
                    latent = self.gpt(
                        speech_conditioning_latent,
                        text_tokens,
                        torch.tensor([text_tokens.shape[-1]], device=text_tokens.device),
                        codes,
                        torch.tensor([codes.shape[-1]], device=text_tokens.device),
                        emo_cond_emb,
                        cond_mel_lengths=torch.tensor([spk_cond_emb.shape[-1]], device=text_tokens.device),
                        emo_cond_mel_lengths=torch.tensor([emo_cond_emb.shape[-1]], device=text_tokens.device),
                        emo_vec=emovec,
                        use_speed=use_speed,
                    )
                latent = self.s2mel.models["gpt_layer"](latent)
                s_infer = self.semantic_codec.quantizer.vq2emb(codes.unsqueeze(1)).transpose(1, 2) + latent
                target_lengths = (code_lens * 1.72).long()
                cond = self.s2mel.models["length_regulator"](s_infer, ylens=target_lengths, n_quantizers=3, f0=None)[0]
                cat_condition = torch.cat([prompt_condition, cond], dim=1)
                vc_target = self.s2mel.models["cfm"].inference(
                    cat_condition,
                    torch.LongTensor([cat_condition.size(1)]).to(cond.device),
                    ref_mel,
                    style,
                    None,
                    25,
                    inference_cfg_rate=0.7,
                )
                vc_target = vc_target[:, :, ref_mel.size(-1) :]
                wav = self.bigvgan(vc_target.float()).squeeze().unsqueeze(0)
                wav = wav.squeeze(1)
                wav = torch.clamp(PCM16_MAX * wav, -PCM16_MAX, PCM16_MAX)
                wavs.append(wav.cpu())
                if stream_return:
                    yield wav.cpu()
                    if silence is None:
                        silence = self.interval_silence(wavs, sampling_rate, interval_silence)
                    yield silence

        wavs = self.insert_interval_silence(wavs, sampling_rate=sampling_rate, interval_silence=interval_silence)
        wav = torch.cat(wavs, dim=1).cpu()
        if verbose:
            print(f">> stand-in inference: {time.perf_counter() - start_time:.3f} s for {wav.shape[-1]} samples")
        if output_path:
            if os.path.isfile(output_path):
                os.remove(output_path)
            if os.path.dirname(output_path):
                os.makedirs(os.path.dirname(output_path), exist_ok=True)
            sf.write(output_path, (wav / PCM16_MAX).clamp(-1.0, 1.0).T.numpy(), sampling_rate, subtype="PCM_16")
            if stream_return:
                return None
            yield output_path
        else:
            if stream_return:
                return None
            yield (sampling_rate, wav.type(torch.int16).numpy().T)
