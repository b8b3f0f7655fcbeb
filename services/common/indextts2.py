"""Building IndexTTS2 halves from a local checkpoint directory, with upstream's own classes.

IndexTTS2's code comes from the PyPI package `indextts2-inference` (module `indextts`,
the optional extra `.[indextts2]`); nothing of it is copied here. Its constructor loads
everything at once (GPT, s2mel, BigVGAN, w2v-BERT, semantic codec, CAMPPlus, the Qwen
emotion model, nemo grammars) and fetches three auxiliary models from the Hugging Face hub.
voxcache splits the work: the Embedder needs only the front end, the Synthesizer only
generation. So this module makes an `IndexTTS2` object without running its constructor
(`object.__new__`), sets the attributes upstream's own methods read, and loads each
sub-model with upstream's classes and checkpoint readers. The result is an ordinary
upstream instance: the Embedder calls its `_get_speaker_conditioning`, the Synthesizer its
`infer`. Attributes a half does not load are simply absent, so touching one fails loudly.

Auxiliary models are read from a local Hugging Face cache (`hf_cache`, laid out as
`hf download <repo> --cache-dir <hf_cache>` leaves it) with `local_files_only=True`: a
missing file is an error, never a download.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The hub repositories upstream's `_load_semantic` / `_load_s2mel` name, read from `hf_cache`.
W2V_BERT_REPO = "facebook/w2v-bert-2.0"
SEMANTIC_CODEC = ("amphion/MaskGCT", "semantic_codec/model.safetensors")
CAMPPLUS = ("funasr/campplus", "campplus_cn_common.bin")


def _shell(model_dir: Path, device: str | None, use_fp16: bool) -> Any:
    """An `IndexTTS2` with device, config and empty speaker caches, and no models yet."""
    from indextts.infer_v2 import IndexTTS2

    tts = object.__new__(IndexTTS2)
    tts._resolve_device(device, use_fp16, False)
    tts._load_config(str(model_dir), None)
    tts.use_accel = False
    tts.use_torch_compile = False
    tts.qwen_emo = None
    tts._init_cache()
    return tts


def _s2mel(tts: Any) -> Any:
    """s2mel (CFM + length regulator + GPT-latent adapter) from `s2mel.pth`, as upstream reads it."""
    from indextts.s2mel.modules.commons import MyModel, load_checkpoint2

    model = MyModel(tts.cfg.s2mel, use_gpt_latent=True)
    path = os.path.join(tts.model_dir, tts.cfg.s2mel_checkpoint)
    model, *_ = load_checkpoint2(model, None, path, load_only_params=True, ignore_modules=[], is_distributed=False)
    return model.to(tts.device)


def _semantic_codec(tts: Any, hf_cache: Path) -> Any:
    import safetensors.torch
    from huggingface_hub import hf_hub_download
    from indextts.utils.maskgct_utils import build_semantic_codec

    codec = build_semantic_codec(tts.cfg.semantic_codec)
    repo, filename = SEMANTIC_CODEC
    path = hf_hub_download(repo, filename=filename, cache_dir=str(hf_cache), local_files_only=True)
    safetensors.torch.load_model(codec, path)
    return codec.to(tts.device).eval()


def load_front_end(model_dir: Path | str, hf_cache: Path | str, *, device: str | None = None) -> Any:
    """The Embedder's half: w2v-BERT + its statistics, the semantic codec, CAMPPlus, the mel
    function and s2mel's length regulator, everything `_get_speaker_conditioning` and
    `_get_emotion_conditioning` read. No GPT, no CFM, no BigVGAN, no Qwen, no text front end."""
    import torch
    from indextts.s2mel.modules.campplus.DTDNN import CAMPPlus
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertModel

    hf_cache = Path(hf_cache)
    tts = _shell(Path(model_dir), device, False)
    tts.extract_features = SeamlessM4TFeatureExtractor.from_pretrained(
        W2V_BERT_REPO, cache_dir=str(hf_cache), local_files_only=True
    )
    tts.semantic_model = (
        Wav2Vec2BertModel.from_pretrained(W2V_BERT_REPO, cache_dir=str(hf_cache), local_files_only=True)
        .to(tts.device)
        .eval()
    )
    stats = torch.load(os.path.join(tts.model_dir, tts.cfg.w2v_stat), map_location="cpu")
    tts.semantic_mean = stats["mean"].to(tts.device)
    tts.semantic_std = torch.sqrt(stats["var"]).to(tts.device)
    tts.semantic_codec = _semantic_codec(tts, hf_cache)
    s2mel = _s2mel(tts)
    # Only the length regulator turns the codec's output into `prompt_condition`; the CFM
    # (most of s2mel) and the GPT-latent adapter belong to generation.
    for name in [n for n in s2mel.models if n != "length_regulator"]:
        del s2mel.models[name]
    tts.s2mel = s2mel.eval()
    repo, filename = CAMPPLUS
    campplus = CAMPPlus(feat_dim=80, embedding_size=192)
    path = _hub_file(repo, filename, hf_cache)
    campplus.load_state_dict(torch.load(path, map_location="cpu"))
    tts.campplus_model = campplus.to(tts.device).eval()
    tts._load_emotion_matrices()  # upstream's: sets mel_fn (and two small emotion tables)
    return tts


def load_generator(
    model_dir: Path | str,
    hf_cache: Path | str,
    *,
    device: str | None = None,
    use_fp16: bool = False,
    emotion_text: bool = False,
    text_normalizer: bool = True,
    language: str | None = None,
) -> Any:
    """The Synthesizer's half: GPT, s2mel, BigVGAN, the tokenizer and the emotion tables, plus
    the one front-end piece `infer` touches on a cache hit: the semantic codec's quantizer
    (`semantic_codec.quantizer.vq2emb` embeds the GPT's codes). The Qwen emotion model is
    loaded only with `emotion_text`. `text_normalizer=False` skips upstream's nemo grammars
    (built on first use: about a minute per language) and tokenizes the text as given."""
    import torch
    from indextts.gpt.model_v2 import UnifiedVoice
    from indextts.s2mel.modules.bigvgan import bigvgan
    from indextts.utils.checkpoint import load_checkpoint
    from indextts.utils.front import TextTokenizer

    hf_cache = Path(hf_cache)
    tts = _shell(Path(model_dir), device, use_fp16)
    gpt = UnifiedVoice(**tts.cfg.gpt, use_accel=False)
    load_checkpoint(gpt, os.path.join(tts.model_dir, tts.cfg.gpt_checkpoint))
    gpt = gpt.to(tts.device).eval()
    if tts.use_fp16:
        gpt = gpt.half()
    gpt.post_init_gpt2_config(use_deepspeed=False, kv_cache=True, half=tts.use_fp16)
    tts.gpt = gpt
    if emotion_text:
        from indextts.emotion import QwenEmotion

        tts.qwen_emo = QwenEmotion(os.path.join(tts.model_dir, tts.cfg.qwen_emo_path))
    s2mel = _s2mel(tts)
    s2mel.models["cfm"].estimator.setup_caches(max_batch_size=1, max_seq_length=8192)
    tts.s2mel = s2mel.eval()
    codec = _semantic_codec(tts, hf_cache)
    holder = torch.nn.Module()
    holder.quantizer = codec.quantizer  # encoder/decoder of the codec stay unloaded after this
    tts.semantic_codec = holder.eval()
    vocoder = bigvgan.BigVGAN.from_pretrained(
        tts.cfg.vocoder.name, use_cuda_kernel=tts.use_cuda_kernel, cache_dir=str(hf_cache), local_files_only=True
    )
    vocoder.remove_weight_norm()
    tts.bigvgan = vocoder.to(tts.device).eval()
    if text_normalizer:
        tts._load_text(language)  # upstream's: nemo normaliser + SentencePiece
    else:
        tts.normalizer = None
        tts.bpe_path = os.path.join(tts.model_dir, tts.cfg.dataset["bpe_model"])
        tts.tokenizer = TextTokenizer(tts.bpe_path, None)
    tts._load_emotion_matrices()
    return tts


def _hub_file(repo: str, filename: str, hf_cache: Path) -> str:
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo, filename=filename, cache_dir=str(hf_cache), local_files_only=True)


#: The sub-models a half may hold, by the attribute upstream gives them.
MODEL_ATTRIBUTES = ("gpt", "qwen_emo", "s2mel", "bigvgan", "semantic_model", "semantic_codec", "campplus_model")


def parameter_bytes(tts: Any) -> dict[str, int]:
    """Bytes of parameters and buffers per loaded sub-model (absent ones omitted): what a half
    costs in accelerator memory before activations."""
    out: dict[str, int] = {}
    for name in MODEL_ATTRIBUTES:
        module = getattr(tts, name, None)
        if name == "qwen_emo" and module is not None:
            module = module.model
        if module is None:
            continue
        tensors = list(module.parameters()) + list(module.buffers())
        out[name] = sum(t.numel() * t.element_size() for t in tensors)
    return out
