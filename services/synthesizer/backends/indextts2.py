"""The real voice cloner: IndexTTS2, fed with the Embedder's cached per-voice bundle.

Where IndexTTS2 is installed with its checkpoints (and a GPU), the Embedder runs
the `indextts2` encoder (services/embedder/encoders/indextts2.py) once per clip
and caches spk_cond_emb / style / prompt_condition / ref_mel; this backend
passes that bundle straight into IndexTTS2's generation half
(indextts2_generate.generate). IndexTTS2's own one-speaker, path-keyed cache is
never used, so concurrent requests for different voices cannot mix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from services.common.errors import InvalidInput
from services.common.indextts2 import load_indextts2
from services.synthesizer import text as text_mod
from services.synthesizer.backends.base import EmbedAudio, Segment, VoicePlan
from services.synthesizer.backends.indextts2_generate import SAMPLE_RATE, generate, load_bundle
from services.synthesizer.settings import SynthesizerSettings

log = logging.getLogger(__name__)

#: Options a request may pass through backend_options (as strings) to generation.
_FLOAT_OPTIONS = ("temperature", "top_p", "repetition_penalty", "length_penalty", "emo_alpha")
_INT_OPTIONS = ("top_k", "num_beams", "max_mel_tokens", "interval_silence", "max_text_tokens_per_segment")


class IndexTTS2Backend:
    name = "indextts2"
    encoder = "indextts2"
    sample_rate = SAMPLE_RATE
    languages = frozenset({"en", "zh"})
    required_tensors: Mapping[str, tuple[int | None, ...]] = {
        "spk_cond_emb": (1, None, 1024),
        "style": (1, 192),
        "prompt_condition": (1, None, 512),
        "ref_mel": (1, 80, None),
    }

    def __init__(self, tts: Any) -> None:
        self.tts = tts

    @classmethod
    def from_checkpoints(
        cls, model_dir: Path, *, use_fp16: bool = False, device: str | None = None
    ) -> IndexTTS2Backend:
        tts = load_indextts2(model_dir, device=device, use_fp16=use_fp16)
        log.info("IndexTTS2 loaded from %s on %s", model_dir, tts.device)
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
        kwargs: dict[str, Any] = {}
        for key, value in options.items():
            try:
                if key in _FLOAT_OPTIONS:
                    kwargs[key] = float(value)
                elif key in _INT_OPTIONS:
                    kwargs[key] = int(value)
                else:
                    known = ", ".join(_FLOAT_OPTIONS + _INT_OPTIONS)
                    raise InvalidInput(f"unknown indextts2 option {key!r}; known: {known}", field="backend_options")
            except ValueError as exc:
                raise InvalidInput(f"option {key}={value!r} is not a number", field=f"backend_options[{key}]") from exc
        try:  # float16 bundles are widened on the device once per request, not per sentence
            bundle = load_bundle(conditioning, self.tts.device)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="conditioning.tensors") from exc
        return VoicePlan("cloned", 0.0, (bundle, kwargs))

    def synthesize(self, segment: Segment, plan: VoicePlan, *, language: str, speed: float) -> np.ndarray:
        bundle, kwargs = plan.payload
        _, audio = generate(self.tts, segment.payload, bundle, **kwargs)
        return audio


def from_settings(settings: SynthesizerSettings) -> IndexTTS2Backend:
    return IndexTTS2Backend.from_checkpoints(settings.indextts2_checkpoints, use_fp16=settings.indextts2_fp16)
