"""Where things live in a checkout, for both services and their tools."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: The repository root: home of models/, checkpoints/ and samples/ unless configured otherwise.
REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
SAMPLES_DIR = REPO_ROOT / "samples"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_DATA_HOME/voxcache, else ~/.local/share/voxcache: where a user's data lives on Linux."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or ""
    # The XDG spec says a relative value is invalid and must be ignored.
    root = Path(base) if os.path.isabs(base) else Path(env.get("HOME") or Path.home()) / ".local" / "share"
    return root / "voxcache"
