"""A tiny IndexTTS2 checkpoint directory, written with upstream's real classes and random weights.

The real checkpoints are ~9 GB and need a GPU; the tests need upstream's *code*, not its
weights. So this builds every sub-model upstream loads (UnifiedVoice, s2mel MyModel, BigVGAN,
CAMPPlus, w2v-BERT, the RepCodec semantic codec, a SentencePiece model trained here on a few
upper-case sentences) from small configs, seeded, and saves them where upstream's readers
look: `model_dir/` as `hf download IndexTeam/IndexTTS-2` lays it out, and the three
auxiliary hub models in a Hugging Face cache directory. Nothing is downloaded.

Sizes that cannot shrink (see /tmp/ix2/FINDINGS.md, section 7, in the research notes): the
feature width 1024 and GPT width 1280 are hard-coded in upstream's modules, and upstream
reads w2v-BERT's hidden layer 17, so w2v-BERT keeps 17 layers of width 1024 (~126 M
parameters); everything else is as small as the constructors allow.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

#: GPT code vocabulary: 32 codes + start + stop. The semantic codec's codebook matches it,
#: because `vq2emb` embeds whatever the GPT emits.
MEL_CODES = 34
MAX_MEL_TOKENS = 64
MAX_TEXT_TOKENS = 64
TEXT_VOCAB = 48

_CONDITION = {
    "output_size": 32,
    "linear_units": 32,
    "attention_heads": 2,
    "num_blocks": 1,
    "input_layer": "conv2d2",
    "perceiver_mult": 1,
}

CONFIG = {
    "dataset": {"bpe_model": "bpe.model"},
    "gpt": {
        "model_dim": 1280,
        "max_mel_tokens": MAX_MEL_TOKENS,
        "max_text_tokens": MAX_TEXT_TOKENS,
        "heads": 2,
        "use_mel_codes_as_input": True,
        "mel_length_compression": 1024,
        "layers": 1,
        "number_text_tokens": TEXT_VOCAB,
        "number_mel_codes": MEL_CODES,
        "start_mel_token": MEL_CODES - 2,
        "stop_mel_token": MEL_CODES - 1,
        "start_text_token": 0,
        "stop_text_token": 1,
        "train_solo_embeddings": False,
        "condition_type": "conformer_perceiver",
        "condition_module": _CONDITION,
        "emo_condition_module": _CONDITION,
    },
    "semantic_codec": {
        "codebook_size": MEL_CODES,
        "hidden_size": 1024,
        "codebook_dim": 8,
        "vocos_dim": 16,
        "vocos_intermediate_dim": 32,
        "vocos_num_layers": 1,
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
            "channels": 32,
            "is_discrete": False,
            "in_channels": 1024,
            "content_codebook_size": 16,
            "sampling_ratios": [1],
            "vector_quantize": False,
            "n_codebooks": 1,
            "quantizer_dropout": 0.0,
            "f0_condition": False,
            "n_f0_bins": 16,
        },
        "DiT": {
            "hidden_dim": 32,
            "num_heads": 2,
            "depth": 2,
            "class_dropout_prob": 0.1,
            "block_size": 8192,
            "in_channels": 80,
            "style_condition": True,
            "final_layer_type": "wavenet",
            "target": "mel",
            "content_dim": 32,
            "content_codebook_size": 16,
            "content_type": "discrete",
            "f0_condition": False,
            "n_f0_bins": 16,
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
            "hidden_dim": 32,
            "num_layers": 2,
            "kernel_size": 5,
            "dilation_rate": 1,
            "p_dropout": 0.2,
            "style_condition": True,
        },
    },
    "gpt_checkpoint": "gpt.pth",
    "w2v_stat": "wav2vec2bert_stats.pt",
    "s2mel_checkpoint": "s2mel.pth",
    "emo_matrix": "feat2.pt",
    "spk_matrix": "feat1.pt",
    "emo_num": [3, 17, 2, 8, 4, 5, 10, 24],
    "qwen_emo_path": "qwen_tiny/",
    "vocoder": {"type": "bigvgan", "name": "<model_dir>/bigvgan"},
    "version": 2.0,
}

BIGVGAN = {
    "resblock": "1",
    "upsample_rates": [8, 8, 4],
    "upsample_kernel_sizes": [16, 16, 8],
    "upsample_initial_channel": 64,
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3]],
    "use_tanh_at_final": False,
    "use_bias_at_final": False,
    "activation": "snakebeta",
    "snake_logscale": True,
    "num_mels": 80,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "sampling_rate": 22050,
    "fmin": 0,
    "fmax": None,
}

W2V_BERT = {
    "hidden_size": 1024,
    "num_hidden_layers": 17,  # upstream reads hidden_states[17]
    "num_attention_heads": 4,
    "intermediate_size": 8,
    "feature_projection_input_dim": 160,
    "conv_depthwise_kernel_size": 3,
    "position_embeddings_type": "relative_key",
    "left_max_position_embeddings": 64,
    "right_max_position_embeddings": 8,
    "add_adapter": False,
    "layerdrop": 0.0,
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.0,
    "apply_spec_augment": False,
}

#: w2v-bert-2.0's preprocessor (its padding value is 1.0; the class default is 0.0).
FEATURE_EXTRACTOR = {
    "feature_size": 80,
    "num_mel_bins": 80,
    "sampling_rate": 16000,
    "stride": 2,
    "padding_value": 1.0,
    "return_attention_mask": True,
}

_SP_TEXT = (
    "HELLO THERE. HOW ARE YOU TODAY?",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.",
    "PLEASE CALL STELLA AND ASK HER TO BRING THESE THINGS.",
    "A RAINBOW IS A DIVISION OF WHITE LIGHT INTO MANY COLOURS.",
    "THIS VOICE WAS CLONED FROM A CACHED BUNDLE!",
    "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN.",
)

_FAKE_REVISION = "0" * 40


def _hub_snapshot(hf_cache: Path, repo: str) -> Path:
    """A directory the hub client resolves `repo` to offline (refs/main -> snapshots/<rev>)."""
    root = hf_cache / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(_FAKE_REVISION)
    snapshot = root / "snapshots" / _FAKE_REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def _train_bpe(path: Path) -> None:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_SP_TEXT * 4),
        model_writer=model,
        vocab_size=TEXT_VOCAB,
        model_type="bpe",
        character_coverage=1.0,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())


def build(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write (model_dir, hf_cache) under `root`; returns both paths."""
    import indextts
    import safetensors.torch
    from indextts.gpt.model_v2 import UnifiedVoice
    from indextts.s2mel.modules.bigvgan.bigvgan import BigVGAN
    from indextts.s2mel.modules.bigvgan.env import AttrDict
    from indextts.s2mel.modules.campplus.DTDNN import CAMPPlus
    from indextts.s2mel.modules.commons import MyModel
    from indextts.utils.maskgct_utils import build_semantic_codec
    from omegaconf import OmegaConf
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    torch.manual_seed(seed)
    model_dir, hf_cache = root / "checkpoints", root / "hf_cache"
    model_dir.mkdir(parents=True)
    config = json.loads(json.dumps(CONFIG))
    config["vocoder"]["name"] = str(model_dir / "bigvgan")
    cfg = OmegaConf.create(config)
    OmegaConf.save(cfg, model_dir / "config.yaml")
    _train_bpe(model_dir / "bpe.model")
    # The package ships upstream's w2v-BERT statistics; the real checkpoint carries the same file.
    stats = Path(indextts.__file__).parent / "utils/maskgct/models/tts/maskgct/ckpt/wav2vec2bert_stats.pt"
    (model_dir / "wav2vec2bert_stats.pt").write_bytes(stats.read_bytes())
    emotions = sum(CONFIG["emo_num"])
    torch.save(torch.randn(emotions, 192), model_dir / "feat1.pt")
    torch.save(torch.randn(emotions, 1280) * 0.02, model_dir / "feat2.pt")
    torch.save(UnifiedVoice(**cfg.gpt).state_dict(), model_dir / "gpt.pth")
    s2mel = MyModel(cfg.s2mel, use_gpt_latent=True)
    torch.save({"net": {name: module.state_dict() for name, module in s2mel.models.items()}}, model_dir / "s2mel.pth")
    (model_dir / "bigvgan").mkdir()
    (model_dir / "bigvgan" / "config.json").write_text(json.dumps(BIGVGAN))
    vocoder = BigVGAN(AttrDict(dict(BIGVGAN)), use_cuda_kernel=False)
    torch.save({"generator": vocoder.state_dict()}, model_dir / "bigvgan" / "bigvgan_generator.pt")

    snapshot = _hub_snapshot(hf_cache, "facebook/w2v-bert-2.0")
    SeamlessM4TFeatureExtractor(**FEATURE_EXTRACTOR).save_pretrained(snapshot)
    Wav2Vec2BertModel(Wav2Vec2BertConfig(**W2V_BERT)).save_pretrained(snapshot)
    snapshot = _hub_snapshot(hf_cache, "amphion/MaskGCT")
    (snapshot / "semantic_codec").mkdir()
    safetensors.torch.save_model(
        build_semantic_codec(cfg.semantic_codec), str(snapshot / "semantic_codec" / "model.safetensors")
    )
    snapshot = _hub_snapshot(hf_cache, "funasr/campplus")
    torch.save(CAMPPlus(feat_dim=80, embedding_size=192).state_dict(), snapshot / "campplus_cn_common.bin")
    return model_dir, hf_cache
