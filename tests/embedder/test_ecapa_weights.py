"""The real spkrec-ecapa-voxceleb weights are loaded, verified and discriminate speakers."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from services.common.paths import REPO_ROOT
from services.common.weights import WeightsError
from services.embedder import audio
from services.embedder.encoders import ecapa_onnx
from services.embedder.encoders.ecapa import MANIFEST, EcapaEncoder
from services.embedder.settings import EmbedderSettings
from tests.audio_fixtures import SENTENCES, encode, espeak
from tests.weights_checks import assert_digest_covers_every_file

VOICES = ("en-us", "en-us+f3", "en-gb", "en-us+m7")


def test_same_speaker_is_closer_than_cross_speaker(ecapa: EcapaEncoder) -> None:
    """espeak-ng voices stand in for speakers: every voice reads three different sentences."""
    vectors: dict[str, list[np.ndarray]] = {}
    for voice in VOICES:
        for sentence in SENTENCES:
            samples, rate = espeak(sentence, voice)
            decoded = audio.decode(encode(samples, rate), EmbedderSettings().audio_limits)
            vectors.setdefault(voice, []).append(ecapa.encode(decoded.samples)["speaker"])
    same = [float(a @ b) for vs in vectors.values() for a, b in itertools.combinations(vs, 2)]
    cross = [float(a @ b) for v1, v2 in itertools.combinations(VOICES, 2) for a in vectors[v1] for b in vectors[v2]]
    print(f"same-speaker cosine {np.mean(same):.3f}, cross-speaker {np.mean(cross):.3f}")
    assert np.mean(same) > np.mean(cross) + 0.25
    assert min(same) > np.mean(cross)


def test_weights_digest_covers_every_file() -> None:
    """Every model file in the installed directory is pinned, and each one moves the digest."""
    export = frozenset({ecapa_onnx.ONNX_FILE, ecapa_onnx.RECORD_FILE})  # bound to the digest by its record
    assert_digest_covers_every_file(MANIFEST, REPO_ROOT / "models" / "ecapa", derived=export)
    assert EcapaEncoder.weights_digest == MANIFEST.digest


def test_tampered_or_missing_weights_refuse_to_load(tmp_path: Path) -> None:
    source = REPO_ROOT / "models" / "ecapa"
    for spec in MANIFEST.files:
        if spec.name != "embedding_model.ckpt":
            shutil.copy(source / spec.name, tmp_path / spec.name)
    with pytest.raises(WeightsError, match=r"embedding_model\.ckpt: missing"):
        EcapaEncoder(tmp_path, device="cpu")
    (tmp_path / "embedding_model.ckpt").symlink_to(source / "embedding_model.ckpt")
    with (tmp_path / "hyperparams.yaml").open("a") as handle:
        handle.write("\n# edited\n")
    with pytest.raises(WeightsError, match=r"hyperparams\.yaml: sha256"):
        EcapaEncoder(tmp_path, device="cpu")
