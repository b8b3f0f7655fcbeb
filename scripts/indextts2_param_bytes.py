"""Parameter bytes of each service's IndexTTS2 half for the real config, without any weights.

Every sub-model is instantiated with upstream's classes on PyTorch's meta device (shapes, no
memory), from the published configuration values below, and counted. Run:

    .venv/bin/python scripts/indextts2_param_bytes.py

The values are IndexTeam/IndexTTS-2's config.yaml, nvidia/bigvgan_v2_22khz_80band_256x's
config.json, facebook/w2v-bert-2.0 (transformers' Wav2Vec2BertConfig defaults are that
model) and Qwen3-0.6B (the emotion model's base), transcribed from their published configs;
they were not read from the checkpoint files, which are not on this machine.
"""

from __future__ import annotations

import json
from typing import Any

import torch

GPT = {
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
}
SEMANTIC_CODEC = {
    "codebook_size": 8192,
    "hidden_size": 1024,
    "codebook_dim": 8,
    "vocos_dim": 384,
    "vocos_intermediate_dim": 2048,
    "vocos_num_layers": 12,
}
S2MEL = {
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
    "DiT": {
        "hidden_dim": 512,
        "num_heads": 8,
        "depth": 13,
        "class_dropout_prob": 0.1,
        "block_size": 8192,
        "in_channels": 80,
        "style_condition": True,
        "final_layer_type": "wavenet",
        "target": "mel",
        "content_dim": 512,
        "content_codebook_size": 1024,
        "content_type": "discrete",
        "f0_condition": False,
        "n_f0_bins": 512,
        "content_codebooks": 1,
        "is_causal": False,
        "long_skip_connection": True,
        "zero_prompt_speech_token": False,
        "time_as_token": False,
        "style_as_token": False,
        "uvit_skip_connection": True,
        "add_resblock_in_transformer": False,
    },
    "wavenet": {
        "hidden_dim": 512,
        "num_layers": 8,
        "kernel_size": 5,
        "dilation_rate": 1,
        "p_dropout": 0.2,
        "style_condition": True,
    },
}
BIGVGAN = {
    "resblock": "1",
    "upsample_rates": [4, 4, 2, 2, 2, 2],
    "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
    "upsample_initial_channel": 1536,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "activation": "snakebeta",
    "snake_logscale": True,
    "use_tanh_at_final": False,
    "use_bias_at_final": False,
    "num_mels": 80,
    "sampling_rate": 22050,
}
QWEN3_0_6B = {
    "vocab_size": 151936,
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "tie_word_embeddings": True,
}


def count(module: torch.nn.Module) -> int:
    """Parameters and buffers, as elements (bytes depend on the dtype it runs in)."""
    return sum(t.numel() for t in list(module.parameters()) + list(module.buffers()))


def sizes() -> dict[str, dict[str, int]]:
    from indextts.gpt.model_v2 import UnifiedVoice
    from indextts.s2mel.modules.bigvgan.bigvgan import BigVGAN
    from indextts.s2mel.modules.bigvgan.env import AttrDict
    from indextts.s2mel.modules.campplus.DTDNN import CAMPPlus
    from indextts.s2mel.modules.commons import MyModel
    from indextts.utils.maskgct_utils import build_semantic_codec
    from omegaconf import OmegaConf
    from transformers import Qwen3Config, Qwen3ForCausalLM, Wav2Vec2BertConfig, Wav2Vec2BertModel

    with torch.device("meta"):
        s2mel = MyModel(OmegaConf.create(S2MEL), use_gpt_latent=True)
        codec = build_semantic_codec(OmegaConf.create(SEMANTIC_CODEC))
        front = {
            "semantic_model (w2v-bert-2.0)": count(Wav2Vec2BertModel(Wav2Vec2BertConfig())),
            "semantic_codec (whole)": count(codec),
            "campplus_model": count(CAMPPlus(feat_dim=80, embedding_size=192)),
            "s2mel length_regulator": count(s2mel.models["length_regulator"]),
        }
        vocoder = BigVGAN(AttrDict(json.loads(json.dumps(BIGVGAN))), use_cuda_kernel=False)
        vocoder.remove_weight_norm()
        generator = {
            "gpt (UnifiedVoice)": count(UnifiedVoice(**GPT)),
            "s2mel (CFM + length_regulator + gpt_layer)": count(s2mel),
            "bigvgan": count(vocoder),
            "semantic_codec.quantizer": count(codec.quantizer),
        }
        emotion = {"qwen_emo (Qwen3-0.6B)": count(Qwen3ForCausalLM(Qwen3Config(**QWEN3_0_6B)))}
    return {"embedder": front, "synthesizer": generator, "synthesizer, --indextts2-emotion-text": emotion}


def main() -> None:
    table: dict[str, Any] = sizes()
    for side, parts in table.items():
        total = sum(parts.values())
        print(
            f"{side}: {total / 1e6:.1f} M elements = {total * 4 / 2**30:.2f} GiB float32, "
            f"{total * 2 / 2**30:.2f} GiB float16"
        )
        for name, n in parts.items():
            print(f"  {name:45s} {n / 1e6:9.1f} M  {n * 4 / 2**20:9.0f} MiB float32")


if __name__ == "__main__":
    main()
