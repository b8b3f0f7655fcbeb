"""IndexTTS2's generation half, fed by cached per-voice tensors instead of a prompt path.

``IndexTTS2.infer`` (github.com/index-tts/index-tts, ``indextts/infer_v2.py`` at commit
ee40fa7d6c6b8a2c7f06105f9f1e65775b74868c) recomputes the speaker conditioning whenever
the prompt path differs from the last one and keeps it on the model object
(``cache_spk_cond``, ``cache_s2mel_style``, ``cache_s2mel_prompt``, ``cache_mel``,
``cache_emo_cond``...), so one instance can serve one voice at a time. ``generate``
runs the rest of ``infer_generator`` (lines 410-444 and 491-727) on a bundle made by
``services.embedder.encoders.indextts2.IndexTTS2Encoder``:

* it reads only the model's weights, tokenizer and config -- never the cache
  attributes, never ``gr_progress`` -- and keeps every per-call tensor local;
* upstream's GPT hands the prompt embedding to its decoder through instance state
  (``gpt.inference_speech`` calls ``inference_model.store_mel_emb`` and HF ``generate``
  then reads ``cached_mel_emb``; the optional accel engine holds a KV pool), so that
  call is serialised per GPT object with a lock. Everything else (GPT latent pass,
  s2mel CFM, BigVGAN) runs concurrently. Two threads with two voices may therefore
  share one model; autoregressive decoding itself is one-at-a-time per model.
  ``tts.infer`` does not take this lock: do not mix it with concurrent ``generate``.

Emotion, as upstream: with no emotion reference, the emotion conditioning is the
speaker's own ``spk_cond_emb`` and ``emo_alpha`` is forced to 1.0. (Upstream re-loads the
speaker *file* at 16 kHz with librosa for that -- lines 439-444, 504-519 -- so its
``emo_cond_emb`` differs from ``spk_cond_emb`` only by resampler noise: soxr from the
file's native rate vs torchaudio from 22.05 kHz.) A bundle may carry its own
``emo_cond_emb``; ``emo_cond_emb=`` (e.g. another voice's ``spk_cond_emb``) plays the role
of ``emo_audio_prompt``; ``emo_vector`` / ``use_emo_text`` work as upstream's.

Output: (22050, float32 mono in [-1, 1]) equal to upstream's int16 result divided by
32767, before its truncation to integers.
"""

from __future__ import annotations

import logging
import random
import threading
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

SAMPLE_RATE = 22_050
PCM16_MAX = 32767.0
#: s2mel settings infer_generator hard-codes (lines 656-657).
DIFFUSION_STEPS = 25
INFERENCE_CFG_RATE = 0.7
#: Mel frames per GPT code (line 662): 22050 / 256 / 50 codes per second.
CODE_TO_MEL = 1.72

BUNDLE_NAMES = ("spk_cond_emb", "style", "prompt_condition", "ref_mel")

_locks_guard = threading.Lock()
_gpt_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_front_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()


def _lock_for(table: weakref.WeakKeyDictionary[Any, threading.Lock], owner: Any) -> threading.Lock:
    with _locks_guard:
        lock = table.get(owner)
        if lock is None:
            lock = table[owner] = threading.Lock()
        return lock


def _tensor(value: np.ndarray | torch.Tensor, device: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=device, dtype=torch.float32)
    return torch.from_numpy(np.array(value, dtype=np.float32)).to(
        device
    )  # a writable copy (cache arrays are read-only)


def load_bundle(bundle: Mapping[str, np.ndarray | torch.Tensor], device: Any) -> dict[str, torch.Tensor]:
    """Float32 tensors on `device`, shapes checked against what the encoder produces."""
    missing = [name for name in BUNDLE_NAMES if name not in bundle]
    if missing:
        raise ValueError(f"IndexTTS2 bundle lacks {', '.join(missing)}")
    out = {name: _tensor(bundle[name], device) for name in BUNDLE_NAMES}
    if "emo_cond_emb" in bundle:
        out["emo_cond_emb"] = _tensor(bundle["emo_cond_emb"], device)
    spk, style, prompt, mel = (out[name] for name in BUNDLE_NAMES)
    problems = []
    if spk.ndim != 3 or spk.shape[0] != 1 or spk.shape[2] != 1024:
        problems.append(f"spk_cond_emb {tuple(spk.shape)} is not (1, T, 1024)")
    if tuple(style.shape) != (1, 192):
        problems.append(f"style {tuple(style.shape)} is not (1, 192)")
    if prompt.ndim != 3 or prompt.shape[0] != 1 or prompt.shape[2] != 512:
        problems.append(f"prompt_condition {tuple(prompt.shape)} is not (1, T', 512)")
    if mel.ndim != 3 or mel.shape[:2] != (1, 80):
        problems.append(f"ref_mel {tuple(mel.shape)} is not (1, 80, T')")
    elif prompt.ndim == 3 and prompt.shape[1] != mel.shape[2]:
        problems.append(f"prompt_condition has {prompt.shape[1]} frames but ref_mel has {mel.shape[2]}")
    if problems:
        raise ValueError("bad IndexTTS2 bundle: " + "; ".join(problems))
    return out


def generate(
    tts: Any,
    text: str,
    bundle: Mapping[str, np.ndarray | torch.Tensor],
    *,
    emo_cond_emb: np.ndarray | torch.Tensor | None = None,
    emo_alpha: float = 1.0,
    emo_vector: Sequence[float] | None = None,
    use_emo_text: bool = False,
    emo_text: str | None = None,
    use_random: bool = False,
    interval_silence: int = 200,
    max_text_tokens_per_segment: int = 120,
    quick_streaming_tokens: int = 0,
    verbose: bool = False,
    **generation_kwargs: Any,
) -> tuple[int, np.ndarray]:
    """Speak `text` in the bundle's voice: (22050, float32 mono in [-1, 1]).

    Options are ``infer``'s, minus the prompt paths and file output: ``emo_cond_emb``
    stands for ``emo_audio_prompt``; ``quick_streaming_tokens`` is what ``infer`` passes
    its ``more_segment_before`` into. ``generation_kwargs`` (top_p, top_k, temperature,
    num_beams, repetition_penalty, length_penalty, max_mel_tokens, other HF generate
    kwargs) behave as in ``infer``; like upstream, ``do_sample`` is accepted but
    sampling stays on.
    """
    chunks = list(
        generate_segments(
            tts,
            text,
            bundle,
            emo_cond_emb=emo_cond_emb,
            emo_alpha=emo_alpha,
            emo_vector=emo_vector,
            use_emo_text=use_emo_text,
            emo_text=emo_text,
            use_random=use_random,
            interval_silence=interval_silence,
            max_text_tokens_per_segment=max_text_tokens_per_segment,
            quick_streaming_tokens=quick_streaming_tokens,
            verbose=verbose,
            **generation_kwargs,
        )
    )
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return SAMPLE_RATE, audio.astype(np.float32, copy=False)


def generate_segments(
    tts: Any,
    text: str,
    bundle: Mapping[str, np.ndarray | torch.Tensor],
    *,
    emo_cond_emb: np.ndarray | torch.Tensor | None = None,
    emo_alpha: float = 1.0,
    emo_vector: Sequence[float] | None = None,
    use_emo_text: bool = False,
    emo_text: str | None = None,
    use_random: bool = False,
    interval_silence: int = 200,
    max_text_tokens_per_segment: int = 120,
    quick_streaming_tokens: int = 0,
    verbose: bool = False,
    **generation_kwargs: Any,
) -> Iterator[np.ndarray]:
    """``generate`` one text segment at a time (silence is yielded between segments).

    Concatenating the chunks gives exactly ``generate``'s audio.
    """
    device = tts.device
    tensors = load_bundle(bundle, device)
    spk_cond_emb = tensors["spk_cond_emb"]
    style = tensors["style"]
    prompt_condition = tensors["prompt_condition"]
    ref_mel = tensors["ref_mel"]
    emo_vector = list(emo_vector) if emo_vector is not None else None

    # 410-413: text or vector guidance replaces any emotion reference.
    if use_emo_text or emo_vector is not None:
        emo_cond_emb = None
    # 415-427: emotion vector from text (QwenEmotion; shared model, so under the front lock).
    if use_emo_text:
        if getattr(tts, "qwen_emo", None) is None:
            raise RuntimeError("use_emo_text=True needs IndexTTS2 built with use_qwen_emo=True")
        with _lock_for(_front_locks, tts):
            emo_vector = list(tts.qwen_emo.inference(text if emo_text is None else emo_text).values())
    # 429-437: vectors can't be alpha-blended later, so scale them now (truncated to 4 decimals).
    if emo_vector is not None:
        scale = max(0.0, min(1.0, emo_alpha))
        if scale != 1.0:
            emo_vector = [int(x * scale * 10000) / 10000 for x in emo_vector]
    # 439-444 and 504-519: no emotion reference -> the speaker's own conditioning, alpha 1.
    if emo_cond_emb is None:
        emo = tensors.get("emo_cond_emb", spk_cond_emb)
        emo_alpha = 1.0
    else:
        emo = _tensor(emo_cond_emb, device)

    # 491-502: emotion vector -> mix of emotion-matrix rows picked by speaker-style similarity.
    weight_vector: torch.Tensor | None = None
    emovec_mat: torch.Tensor | None = None
    if emo_vector is not None:
        weight_vector = torch.tensor(emo_vector, device=device)
        if use_random:
            picks = [random.randint(0, count - 1) for count in tts.emo_num]
        else:
            picks = [torch.argmax(F.cosine_similarity(style.float(), rows.float(), dim=1)) for rows in tts.spk_matrix]
        chosen = torch.cat([rows[pick].unsqueeze(0) for pick, rows in zip(picks, tts.emo_matrix, strict=True)], 0)
        emovec_mat = torch.sum(weight_vector.unsqueeze(1) * chosen, 0).unsqueeze(0)

    # 522-530: normalise, tokenise, segment.
    with _lock_for(_front_locks, tts):
        text_tokens_list = tts.tokenizer.tokenize(text)
        segments = tts.tokenizer.split_segments(
            text_tokens_list, max_text_tokens_per_segment, quick_streaming_tokens=quick_streaming_tokens
        )
        token_ids = tts.tokenizer.convert_tokens_to_ids(text_tokens_list)
        unk = tts.tokenizer.unk_token_id
    if unk in token_ids:
        unknown = [t for t, i in zip(text_tokens_list, token_ids, strict=True) if i == unk]
        log.warning("text has %d tokens the BPE model cannot encode: %s", len(unknown), unknown)
    if verbose:
        log.info("IndexTTS2: %d tokens in %d segments", len(text_tokens_list), len(segments))

    # 537-546: generation defaults.
    generation_kwargs = dict(generation_kwargs)
    generation_kwargs.pop("do_sample", True)  # popped and ignored upstream: sampling stays on
    top_p = generation_kwargs.pop("top_p", 0.8)
    top_k = generation_kwargs.pop("top_k", 30)
    temperature = generation_kwargs.pop("temperature", 0.8)
    length_penalty = generation_kwargs.pop("length_penalty", 0.0)
    num_beams = generation_kwargs.pop("num_beams", 3)
    repetition_penalty = generation_kwargs.pop("repetition_penalty", 10.0)
    max_mel_tokens = generation_kwargs.pop("max_mel_tokens", 1500)

    silence = np.zeros(int(SAMPLE_RATE * interval_silence / 1000.0), dtype=np.float32)
    stop_mel_token = tts.stop_mel_token
    warned = False
    gpt_lock = _lock_for(_gpt_locks, tts.gpt)
    for index, sent in enumerate(segments):
        # 559-560
        text_tokens = torch.tensor(tts.tokenizer.convert_tokens_to_ids(sent), dtype=torch.int32, device=device)
        text_tokens = text_tokens.unsqueeze(0)
        device_type = text_tokens.device.type
        amp = {"enabled": tts.dtype is not None, "dtype": tts.dtype}
        spk_len = torch.tensor([spk_cond_emb.shape[-1]], device=device)  # sic: the feature size, as upstream
        emo_len = torch.tensor([emo.shape[-1]], device=device)
        with torch.no_grad():
            with torch.amp.autocast(device_type, **amp):
                # 571-581
                emovec = tts.gpt.merge_emovec(spk_cond_emb, emo, spk_len, emo_len, alpha=emo_alpha)
                if emovec_mat is not None and weight_vector is not None:
                    emovec = emovec_mat + (1 - torch.sum(weight_vector)) * emovec
                # 583-600: emo is passed positionally into inference_speech's `langs` slot, as upstream.
                with gpt_lock:
                    codes, speech_conditioning_latent = tts.gpt.inference_speech(
                        spk_cond_emb,
                        text_tokens,
                        emo,
                        cond_lengths=spk_len,
                        emo_cond_lengths=emo_len,
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
            # 603-610
            if not warned and (codes[:, -1] != stop_mel_token).any():
                warnings.warn(
                    f"IndexTTS2 generation stopped at max_mel_tokens ({max_mel_tokens}) for a segment of "
                    f"{text_tokens.shape[1]} text tokens; lower max_text_tokens_per_segment or raise max_mel_tokens",
                    RuntimeWarning,
                    stacklevel=2,
                )
                warned = True
            # 618-630: length up to the first stop token.
            code_lens = []
            for code in codes:
                stops = (code == stop_mel_token).nonzero(as_tuple=False)
                code_lens.append(int(stops[0][0]) if stops.numel() > 0 else len(code))
            codes = codes[:, : max(code_lens)]
            code_lens_t = torch.LongTensor(code_lens).to(device)

            # 637-651: GPT latent for the generated codes.
            use_speed = torch.zeros(spk_cond_emb.size(0)).to(spk_cond_emb.device).long()
            with torch.amp.autocast(device_type, **amp):
                latent = tts.gpt(
                    speech_conditioning_latent,
                    text_tokens,
                    torch.tensor([text_tokens.shape[-1]], device=device),
                    codes,
                    torch.tensor([codes.shape[-1]], device=device),
                    emo,
                    cond_mel_lengths=spk_len,
                    emo_cond_mel_lengths=emo_len,
                    emo_vec=emovec,
                    use_speed=use_speed,
                )
            # 653-675: s2mel in float32: codes + latent -> length regulator -> CFM after the prompt.
            with torch.amp.autocast(device_type, enabled=False):
                latent = tts.s2mel.models["gpt_layer"](latent)
                s_infer = tts.semantic_codec.quantizer.vq2emb(codes.unsqueeze(1)).transpose(1, 2) + latent
                target_lengths = (code_lens_t * CODE_TO_MEL).long()
                cond = tts.s2mel.models["length_regulator"](s_infer, ylens=target_lengths, n_quantizers=3, f0=None)[0]
                cat_condition = torch.cat([prompt_condition, cond], dim=1)
                vc_target = tts.s2mel.models["cfm"].inference(
                    cat_condition,
                    torch.LongTensor([cat_condition.size(1)]).to(cond.device),
                    ref_mel,
                    style,
                    None,
                    DIFFUSION_STEPS,
                    inference_cfg_rate=INFERENCE_CFG_RATE,
                )
                vc_target = vc_target[:, :, ref_mel.size(-1) :]
                # 678-681: vocoder.
                wav = tts.bigvgan(vc_target.float()).squeeze().unsqueeze(0).squeeze(1)
            # 683: upstream's PCM scaling and clamp, then back to [-1, 1].
            wav = torch.clamp(PCM16_MAX * wav, -PCM16_MAX, PCM16_MAX)
        # 696 (insert_interval_silence): silence between segments, not after the last.
        if index and silence.size:
            yield silence
        yield (wav[0].float().cpu().numpy() / PCM16_MAX).astype(np.float32)
