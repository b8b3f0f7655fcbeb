"""The environment the tests run in is the one uv.lock describes, and its torch pair loads.

A fresh install once resolved torchaudio 2.11.1 beside torch 2.11.0 and died at import
(`undefined symbol` in libtorchaudio.so). These tests turn that class of failure into a
named one: the lock pins the pair, the venv holds exactly the lock, and the compiled
extension (not just the Python package) is exercised.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from services.common.paths import REPO_ROOT

UV = REPO_ROOT / "tools" / "uv" / "bin" / "uv"


def _locked_versions(name: str) -> set[str]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return {package["version"] for package in lock["package"] if package["name"] == name}


def _pyproject_pin(name: str) -> str:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = [dep for dep in project["dependencies"] if dep.startswith(f"{name}==")]
    return pin.split("==", 1)[1]


@pytest.mark.parametrize("name", ["torch", "torchaudio"])
def test_torch_pair_is_pinned_exactly_and_installed_as_locked(name: str) -> None:
    pinned = _pyproject_pin(name)
    assert _locked_versions(name) == {pinned}, f"uv.lock and pyproject.toml disagree on {name}"
    installed = metadata.version(name).split("+", 1)[0]  # drop the local tag (+cu130, +cpu)
    assert installed == pinned, f"{name} {installed} is installed, the lock says {pinned}: run scripts/setup.sh"


def test_torchaudio_compiled_extension_runs() -> None:
    import torch
    import torchaudio.functional as F
    from torchaudio import _extension

    assert _extension._IS_TORCHAUDIO_EXT_AVAILABLE, "torchaudio's compiled extension did not load"
    # forced_align is a C++ op inside libtorchaudio: this call crosses the torch <-> torchaudio ABI.
    generator = torch.Generator().manual_seed(0)
    log_probs = torch.randn(1, 12, 5, generator=generator).log_softmax(-1)
    targets = torch.tensor([[1, 2, 3]], dtype=torch.int32)
    alignment, scores = F.forced_align(log_probs, targets, blank=0)
    path = alignment[0].tolist()
    collapsed = [token for i, token in enumerate(path) if token != 0 and (i == 0 or path[i - 1] != token)]
    assert collapsed == [1, 2, 3], f"alignment {path} does not spell the targets"
    assert scores.shape == (1, 12) and bool(torch.isfinite(scores).all())


def test_venv_matches_the_lock_exactly() -> None:
    venv = Path(sys.prefix)  # the venv running these tests
    result = subprocess.run(
        # The test environment carries the indextts2 extra: its real-class tests run in CI.
        [str(UV), "sync", "--frozen", "--extra", "indextts2", "--check", "--python", str(venv / "bin" / "python")],
        cwd=REPO_ROOT,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"the venv differs from uv.lock:\n{result.stdout}{result.stderr}"
