"""Building the real IndexTTS2 from a local checkpoint directory, never from a hub.

Both services need the model object (the Embedder for its front end, the
Synthesizer for generation); this is the one place that knows how to construct
it offline. Only importable where upstream's `indextts` package is installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def load_indextts2(
    model_dir: Path | str,
    *,
    cfg_path: Path | str | None = None,
    device: str | None = None,
    use_fp16: bool = False,
    **tts_kwargs: Any,
) -> Any:
    """`indextts.infer_v2.IndexTTS2` over `model_dir`, with every auxiliary model read from
    `model_dir/hf_cache/` (upstream downloads them when `aux_paths` is not given)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from indextts.infer_v2 import IndexTTS2  # heavy; only present where the real package is installed

    model_dir = Path(model_dir)
    aux = model_dir / "hf_cache"
    tts_kwargs.setdefault(
        "aux_paths",
        {
            "w2v_bert": str(aux / "w2v-bert-2.0"),
            "semantic_codec": str(aux / "semantic_codec_model.safetensors"),
            "campplus": str(aux / "campplus_cn_common.bin"),
            "bigvgan": str(aux / "bigvgan"),
        },
    )
    return IndexTTS2(
        cfg_path=str(cfg_path or model_dir / "config.yaml"),
        model_dir=str(model_dir),
        use_fp16=use_fp16,
        device=device,
        **tts_kwargs,
    )
