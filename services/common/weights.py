"""Verified model weights, for every model either service loads.

SpeechBrain loads checkpoints with strict=False: a wrong or truncated file would
silently leave random weights and poison the shared cache. So every weight file
is pinned by SHA-256 in a manifest, checked when installed and again at load,
and the manifest's digest is part of every cache key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


class WeightsError(RuntimeError):
    """Model files missing or not the expected bytes: refuse to serve."""


@dataclass(frozen=True)
class WeightFile:
    name: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class WeightsManifest:
    #: Bumped when preprocessing changes, so old cache entries stop matching.
    version: str
    files: tuple[WeightFile, ...]

    @property
    def digest(self) -> str:
        lines = [self.version] + [f"{f.name} {f.sha256}" for f in sorted(self.files, key=lambda f: f.name)]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def verify(self, directory: Path) -> None:
        """Raise WeightsError unless every file exists with its pinned SHA-256."""
        problems = []
        for spec in self.files:
            path = directory / spec.name
            if not path.is_file():
                problems.append(f"{spec.name}: missing")
                continue
            actual = sha256_file(path)
            if actual != spec.sha256:
                problems.append(f"{spec.name}: sha256 {actual} != expected {spec.sha256}")
        if problems:
            raise WeightsError(
                f"model weights in {directory} failed verification: "
                + "; ".join(problems)
                + ". Re-run scripts/setup.sh (it installs verified weights)."
            )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
