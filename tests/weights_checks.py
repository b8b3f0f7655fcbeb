"""One check shared by every weights manifest test: the digest really covers every file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from services.common.weights import WeightsManifest


def assert_digest_covers_every_file(
    manifest: WeightsManifest, installed: Path, derived: frozenset[str] = frozenset()
) -> None:
    """Every file installed in `installed` is pinned by `manifest`, and altering any one pin
    changes the digest (so a changed file can never reuse another file's cache keys).

    `derived` names files made from the pinned ones at install time and bound to them by
    their own record (ECAPA's ONNX export): allowed, not required."""
    assert {f.name for f in manifest.files} == {p.name for p in installed.iterdir() if p.is_file()} - derived
    for spec in manifest.files:
        others = tuple(f for f in manifest.files if f is not spec)
        assert replace(manifest, files=(*others, replace(spec, sha256="0" * 64))).digest != manifest.digest, spec.name
