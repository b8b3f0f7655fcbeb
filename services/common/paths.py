"""Where things live in a checkout, for both services and their tools."""

from __future__ import annotations

from pathlib import Path

#: The repository root: home of models/, checkpoints/ and samples/ unless configured otherwise.
REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
SAMPLES_DIR = REPO_ROOT / "samples"
