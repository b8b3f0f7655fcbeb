"""TTS backends: engines that turn text and a voice's conditioning into audio.

Adding one is a new module here (a class implementing `base.Backend`, plus
`from_settings(settings) -> Backend`) and one line in `BACKENDS`. Modules are imported
only when chosen, so a backend's heavy dependencies load only where it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.synthesizer.backends.base import Backend
    from services.synthesizer.settings import SynthesizerSettings

#: Backend name (`--backend`) -> the module that builds it.
BACKENDS = {
    "kokoro": "services.synthesizer.backends.kokoro",
    "indextts2": "services.synthesizer.backends.indextts2",
}


def load_backend(settings: SynthesizerSettings) -> Backend:
    module = BACKENDS.get(settings.backend)
    if module is None:
        raise SystemExit(f"unknown backend {settings.backend!r}; choose one of: {', '.join(BACKENDS)}")
    return importlib.import_module(module).from_settings(settings)
