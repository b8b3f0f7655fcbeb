"""ECAPA's embedding network as ONNX: made and verified at install time, only read at run time.

On some CPUs onnxruntime runs ECAPA's convolutions several times faster than torch's oneDNN
path (issue 11). The export is a build artefact of the verified weights, so it is made once
by `encoders/install.py`, beside the weights, with a record of what it was made from (the
weights digest) and of its own SHA-256; the Embedder never exports at request time. A
missing, stale or altered file only means the onnxruntime candidate is skipped.

Only the embedding network is exported (features in, 192-d embedding out, with relative
lengths so padded batches are masked): the filterbank and its normalisation stay in torch,
where they are cheap, so every runtime sees identical features.
"""

from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from services.common.weights import WeightsError, sha256_file

if TYPE_CHECKING:
    from collections.abc import Iterator

    from services.embedder.encoders.ecapa import EcapaEncoder

log = logging.getLogger(__name__)

ONNX_FILE = "embedding_model.onnx"
RECORD_FILE = "embedding_model.onnx.json"
#: Bumped when the exported graph's inputs or outputs change: older files are then stale.
FORMAT = 1
OPSET = 17
#: The least cosine to torch, per clip, that an export (or any runtime) must reach.
MIN_COSINE = 0.9999


@dataclass(frozen=True)
class VerifiedExport:
    path: Path
    min_cosine: float


def find_export(model_dir: Path, weights_digest: str) -> tuple[VerifiedExport | None, str]:
    """The verified export beside the weights, or None and the reason it cannot be used."""
    path, record_path = model_dir / ONNX_FILE, model_dir / RECORD_FILE
    if not path.is_file() or not record_path.is_file():
        return None, f"no ONNX export in {model_dir} (scripts/setup.sh makes it)"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"unreadable {record_path.name}: {exc}"
    if record.get("format") != FORMAT or record.get("weights_digest") != weights_digest:
        return None, f"stale ONNX export in {model_dir} (made from other weights or an older format)"
    if sha256_file(path) != record.get("sha256"):
        return None, f"{path} does not match its recorded SHA-256"
    return VerifiedExport(path, float(record.get("min_cosine", 0.0))), "verified"


@contextmanager
def _without_onnx_package() -> Iterator[None]:
    """Let torch's TorchScript exporter write the file without the `onnx` Python package.

    torch 2.11's exporter serialises the model itself and imports `onnx` only to splice
    custom onnxscript functions into it; ECAPA registers none, so that step is a no-op here
    and is skipped rather than adding a dependency. The result is proven by onnxruntime
    against torch before it is kept.
    """
    from torch.onnx._internal.torchscript_exporter import utils

    original = utils.onnx_proto_utils._add_onnxscript_fn

    def passthrough(model_bytes: bytes, custom_opsets: Any) -> bytes:
        if custom_opsets:
            raise WeightsError("the ECAPA export unexpectedly has custom opsets")
        return model_bytes

    utils.onnx_proto_utils._add_onnxscript_fn = passthrough
    try:
        yield
    finally:
        utils.onnx_proto_utils._add_onnxscript_fn = original


def export(encoder: EcapaEncoder, clips: list[np.ndarray]) -> VerifiedExport:
    """Write the export beside `encoder`'s weights, check it against torch on `clips`, record it.

    `clips` are checked one by one and as one padded batch (the graph must honour lengths).
    """
    import torch

    from services.embedder.encoders import runtimes

    model_dir = encoder.model_dir
    path, record_path = model_dir / ONNX_FILE, model_dir / RECORD_FILE
    record_path.unlink(missing_ok=True)  # no record: never trusted while half written
    feats, lens = encoder.features(clips[:1])
    module = encoder.embedding_module
    with warnings.catch_warnings(), _without_onnx_package(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (feats.cpu(), lens.cpu()),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["feats", "lens"],
            output_names=["embedding"],
            dynamic_axes={"feats": {0: "batch", 1: "frames"}, "lens": {0: "batch"}, "embedding": {0: "batch"}},
        )
    onnx_forward = runtimes.OnnxForward(path, threads=torch.get_num_threads())
    torch_forward = runtimes.TorchForward(module, onednn=True)
    cosines = [runtimes.agreement(torch_forward, onnx_forward, *encoder.features([clip])) for clip in clips]
    cosines.append(runtimes.agreement(torch_forward, onnx_forward, *encoder.features(clips)))
    worst = min(cosines)
    if worst < MIN_COSINE:
        path.unlink(missing_ok=True)
        raise WeightsError(f"the ONNX export differs from torch (cosine {worst:.6f} < {MIN_COSINE}); not kept")
    record = {
        "format": FORMAT,
        "weights_digest": encoder.weights_digest,
        "sha256": sha256_file(path),
        "opset": OPSET,
        "torch": torch.__version__,
        "min_cosine": round(worst, 7),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return VerifiedExport(path, worst)
