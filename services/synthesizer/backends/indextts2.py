"""The voice cloner: IndexTTS2's own `infer`, fed the Embedder's cached conditioning.

Upstream's `IndexTTS2.infer_generator` looks up the speaker and emotion conditioning in
seven instance slots keyed by the prompt "path" (a plain `!=` on whatever was passed) and
only reads audio when the key misses. So this backend never re-implements generation: per
sentence, under one lock per model, it fills all seven slots from the request's bundle
under a key that is not a file (`voxcache://bundle/<uuid>`), calls upstream's generator with
that key, and clears the slots. Upstream's code generates; no reference audio is read.

The lock is what keeps concurrent requests for different voices apart: the slots, the GPT's
stored prompt embedding and the global RNG a seeded request resets are all shared by every
thread using the model (`synthesis_concurrency` > 1 only overlaps the work around it).

Options upstream cannot honour here are refused, never ignored: speed (upstream has no rate
control), `emo_alpha` without an emotion vector (upstream blends alpha only against an
emotion *reference clip*, which this API does not take), `use_emo_text` when the Qwen
emotion model is not loaded, and lengths beyond the GPT's position tables.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.common.errors import InvalidInput
from services.common.indextts2 import load_generator
from services.synthesizer import text as text_mod
from services.synthesizer.backends.base import EmbedAudio, Segment, VoicePlan
from services.synthesizer.settings import SynthesizerSettings
from voxcache.tensors import EMO_COND_EMB, PROMPT_CONDITION, REF_MEL, SPK_COND_EMB, STYLE

log = logging.getLogger(__name__)

SAMPLE_RATE = 22_050
PCM16_MAX = 32767.0
#: Upstream's emotion order for `emo_vector` (8 weights).
EMOTIONS = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")

_FLOAT_OPTIONS = ("temperature", "top_p", "repetition_penalty", "length_penalty", "emo_alpha")
_INT_OPTIONS = ("top_k", "num_beams", "max_mel_tokens", "max_text_tokens_per_segment", "seed")
_BOOL_OPTIONS = ("use_random", "use_emo_text")
_TEXT_OPTIONS = ("emo_text",)
_LIST_OPTIONS = ("emo_vector",)
KNOWN_OPTIONS = _FLOAT_OPTIONS + _INT_OPTIONS + _BOOL_OPTIONS + _TEXT_OPTIONS + _LIST_OPTIONS


@dataclass(frozen=True)
class Injection:
    """One request's conditioning as upstream's slots want it, plus its generation options."""

    key: str
    tensors: dict[str, Any]
    kwargs: dict[str, Any]
    seed: int | None


class IndexTTS2Backend:
    name = "indextts2"
    encoder = "indextts2"
    sample_rate = SAMPLE_RATE
    variable_speed = False
    #: Every language upstream's text front end handles; one instance may be pinned to one.
    SUPPORTED_LANGUAGES = frozenset({"en", "zh"})

    def __init__(self, tts: Any, *, generation_defaults: Mapping[str, Any] | None = None) -> None:
        """`tts` is an upstream `IndexTTS2` with its generation half loaded (services/common/
        indextts2.py). `generation_defaults` are passed to every `infer` call unless a request
        overrides them (upstream's own defaults apply otherwise)."""
        self.tts = tts
        gpt = tts.cfg.gpt
        self.max_mel_tokens = int(gpt.max_mel_tokens)
        self.max_text_tokens = int(gpt.max_text_tokens) - 2  # start/stop tokens take two positions
        self.defaults: dict[str, Any] = {
            "max_mel_tokens": min(1500, self.max_mel_tokens),  # upstream's default, within the table
            "max_text_tokens_per_segment": min(120, self.max_text_tokens),
            **(generation_defaults or {}),
        }
        language = getattr(getattr(tts, "normalizer", None), "preferred_language", None)
        self.languages = frozenset({language}) if language else self.SUPPORTED_LANGUAGES
        self.required_tensors: Mapping[str, tuple[int | None, ...]] = {
            SPK_COND_EMB: (1, None, 1024),
            STYLE: (1, 192),
            PROMPT_CONDITION: (1, None, int(tts.cfg.s2mel.length_regulator.channels)),
            REF_MEL: (1, 80, None),
        }
        #: Serialises slot filling + generation on this model (see the module docstring).
        self.lock = threading.Lock()

    @classmethod
    def from_checkpoints(
        cls,
        model_dir: Path,
        hf_cache: Path | None = None,
        *,
        use_fp16: bool = False,
        device: str | None = None,
        emotion_text: bool = False,
        language: str | None = None,
    ) -> IndexTTS2Backend:
        tts = load_generator(
            model_dir,
            hf_cache or model_dir / "hf_cache",
            device=device,
            use_fp16=use_fp16,
            emotion_text=emotion_text,
            language=language,
        )
        log.info("IndexTTS2 generation half loaded from %s on %s", model_dir, tts.device)
        return cls(tts)

    async def warm_up(self, embed: EmbedAudio) -> None:
        """Nothing to set up: every voice arrives as a cached bundle."""

    def segments(self, text: str, language: str) -> list[Segment]:
        segments = [
            Segment(sentence, sentence) for sentence in text_mod.sentences(text) if any(c.isalnum() for c in sentence)
        ]
        if not segments:
            raise InvalidInput("text yields nothing to speak", field="text")
        return segments

    def plan(self, conditioning: Mapping[str, np.ndarray], options: Mapping[str, str]) -> VoicePlan:
        kwargs, seed = self._options(options)
        tensors = self._tensors(conditioning)
        return VoicePlan("cloned", 0.0, Injection(f"voxcache://bundle/{uuid.uuid4().hex}", tensors, kwargs, seed))

    def synthesize(self, segment: Segment, plan: VoicePlan, *, language: str, speed: float) -> np.ndarray:
        if speed != 1.0:  # the Synthesizer refuses this first; kept so a direct caller cannot slip past
            raise InvalidInput("the indextts2 backend speaks at its own rate only (speed 1.0)", field="speed")
        injection: Injection = plan.payload
        import torch

        with self.lock:
            self._inject(injection)
            try:
                if injection.seed is not None:
                    torch.manual_seed(injection.seed)
                    random.seed(injection.seed)
                with torch.no_grad():
                    results = self.tts.infer_generator(injection.key, segment.payload, None, **injection.kwargs)
                    try:
                        rate, pcm = next(results)
                    finally:
                        results.close()
            finally:
                self.tts._init_cache()
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"IndexTTS2 answered at {rate} Hz, expected {SAMPLE_RATE}")
        return np.asarray(pcm, dtype=np.float32).reshape(-1) / PCM16_MAX

    # -- helpers ----------------------------------------------------------------------
    def _inject(self, injection: Injection) -> None:
        """Fill upstream's seven cache slots, so its `_get_*_conditioning` answer from them."""
        tts, t = self.tts, injection.tensors
        tts.cache_spk_cond = t[SPK_COND_EMB]
        tts.cache_s2mel_style = t[STYLE]
        tts.cache_s2mel_prompt = t[PROMPT_CONDITION]
        tts.cache_mel = t[REF_MEL]
        tts.cache_spk_audio_prompt = injection.key
        tts.cache_emo_cond = t[EMO_COND_EMB]
        tts.cache_emo_audio_prompt = injection.key

    def _tensors(self, conditioning: Mapping[str, np.ndarray]) -> dict[str, Any]:
        import torch

        for name in self.required_tensors:
            if name not in conditioning:
                raise InvalidInput(f"conditioning lacks tensor {name!r}", field="conditioning.tensors")
        frames = conditioning[PROMPT_CONDITION].shape[1]
        if conditioning[REF_MEL].shape[-1] != frames:
            raise InvalidInput(
                f"ref_mel has {conditioning[REF_MEL].shape[-1]} frames but prompt_condition has {frames}",
                field="conditioning.tensors",
            )
        names = (*self.required_tensors, EMO_COND_EMB)
        # Bundles made before emo_cond_emb was cached lack it: upstream's emotion reference is
        # then the speaker clip, whose layer-17 features are the closest thing stored.
        arrays = {name: conditioning.get(name, conditioning[SPK_COND_EMB]) for name in names}
        # float16 bundles are widened once per request; upstream computes these in float32.
        return {
            name: torch.from_numpy(np.array(array, dtype=np.float32)).to(self.tts.device)
            for name, array in arrays.items()
        }

    def _options(self, options: Mapping[str, str]) -> tuple[dict[str, Any], int | None]:
        kwargs: dict[str, Any] = dict(self.defaults)
        for key, value in options.items():
            field = f"backend_options[{key}]"
            try:
                if key in _FLOAT_OPTIONS:
                    kwargs[key] = float(value)
                elif key in _INT_OPTIONS:
                    kwargs[key] = int(value)
                elif key in _BOOL_OPTIONS:
                    if value.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(value)
                    kwargs[key] = value.lower() in ("true", "1")
                elif key in _TEXT_OPTIONS:
                    kwargs[key] = value
                elif key == "emo_vector":
                    weights = [float(x) for x in value.split(",")]
                    if len(weights) != len(EMOTIONS) or not all(0.0 <= w <= 1.2 for w in weights):
                        raise InvalidInput(
                            f"emo_vector takes {len(EMOTIONS)} weights in 0-1.2 ({', '.join(EMOTIONS)})", field=field
                        )
                    kwargs[key] = weights
                else:
                    known = ", ".join(KNOWN_OPTIONS)
                    raise InvalidInput(f"unknown indextts2 option {key!r}; known: {known}", field="backend_options")
            except ValueError as exc:
                raise InvalidInput(f"option {key}={value!r} is not valid", field=field) from exc
        seed = kwargs.pop("seed", None)
        if kwargs.get("use_emo_text") and self.tts.qwen_emo is None:
            raise InvalidInput(
                "use_emo_text needs the emotion model; start the Synthesizer with --indextts2-emotion-text",
                field="backend_options[use_emo_text]",
            )
        if "emo_text" in kwargs and not kwargs.get("use_emo_text"):
            raise InvalidInput("emo_text is read only with use_emo_text=true", field="backend_options[emo_text]")
        if "emo_alpha" in kwargs and "emo_vector" not in kwargs and not kwargs.get("use_emo_text"):
            raise InvalidInput(
                "emo_alpha needs an emotion reference, which this API does not take; "
                "it scales emo_vector or use_emo_text only",
                field="backend_options[emo_alpha]",
            )
        if "use_random" in kwargs and "emo_vector" not in kwargs and not kwargs.get("use_emo_text"):
            raise InvalidInput("use_random applies to emo_vector only", field="backend_options[use_random]")
        if not 1 <= kwargs["max_mel_tokens"] <= self.max_mel_tokens:
            raise InvalidInput(
                f"max_mel_tokens must be 1-{self.max_mel_tokens} for this model",
                field="backend_options[max_mel_tokens]",
            )
        if not 1 <= kwargs["max_text_tokens_per_segment"] <= self.max_text_tokens:
            raise InvalidInput(
                f"max_text_tokens_per_segment must be 1-{self.max_text_tokens} for this model",
                field="backend_options[max_text_tokens_per_segment]",
            )
        return kwargs, seed


def from_settings(settings: SynthesizerSettings) -> IndexTTS2Backend:
    model_dir = Path(settings.indextts2_checkpoints)
    return IndexTTS2Backend.from_checkpoints(
        model_dir,
        Path(settings.indextts2_hf_cache) if settings.indextts2_hf_cache else None,
        use_fp16=settings.indextts2_fp16,
        emotion_text=settings.indextts2_emotion_text,
        language=settings.indextts2_language or None,
    )
