"""Speaker encoders: models that turn 16 kHz mono audio into named tensors.

Adding one is a new module here (a class implementing `base.Encoder`, plus
`from_settings(settings) -> Encoder | None`, None meaning "not configured") and one line
in `ENCODERS`. Modules are imported only when the Embedder starts, so an encoder's heavy
dependencies load only where it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.embedder.encoders.base import Encoder
    from services.embedder.settings import EmbedderSettings

#: Encoder name -> the module that builds it.
ENCODERS = {
    "ecapa": "services.embedder.encoders.ecapa",
    "indextts2": "services.embedder.encoders.indextts2",
}


def load_encoders(settings: EmbedderSettings) -> dict[str, Encoder]:
    """Every registered encoder the settings enable, by name."""
    encoders: dict[str, Encoder] = {}
    for name, module in ENCODERS.items():
        encoder = importlib.import_module(module).from_settings(settings)
        if encoder is not None:
            encoders[name] = encoder
    return encoders
