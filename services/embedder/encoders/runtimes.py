"""Which engine runs ECAPA's embedding network, chosen once at start by timing each one.

Which path is fastest depends on the CPU (issue 11): torch's oneDNN convolutions took 460 ms
per 5 s clip on one machine and ~105 ms on another, where torch without oneDNN took 140 ms
and onnxruntime 125 ms. So `auto` times every candidate on the same warm-up features,
interleaved round by round so a noisy neighbour hurts them alike, and keeps the fastest whose
embedding agrees with torch's (cosine >= MIN_COSINE). Every candidate takes the same inputs
(filterbank features and relative lengths) and returns raw embeddings, so the encoder around
it, batching included, is the same code whatever runs underneath.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

TORCH = "torch"
TORCH_NO_ONEDNN = "torch-no-onednn"
ONNXRUNTIME = "onnxruntime"
AUTO = "auto"
#: The candidates `auto` times on CPU, in order of preference on a tie.
CANDIDATES = (TORCH, TORCH_NO_ONEDNN, ONNXRUNTIME)
CHOICES = (AUTO, *CANDIDATES)
MIN_COSINE = 0.9999

#: (features [B, frames, 80], relative lengths [B]) -> raw embeddings [B, 192] float32.
Forward = Callable[["torch.Tensor", "torch.Tensor"], np.ndarray]


class _NativeKernels:
    """torch's own convolution kernels while any forward pass needs them: oneDNN off, NNPACK off.

    Why NNPACK too: with oneDNN off, torch hands a float32 convolution to NNPACK once a batch
    holds 16 clips or more. On this machine (torch 2.11, 2-core AMD EPYC) one batched pass over
    sixteen 5 s clips then took 46.7 s, 95 % of it in `_nnpack_spatial_convolution` (torch's
    profiler), against 3.4 s with torch's native kernels and 3.0 s with oneDNN; below 16 clips
    the native kernels ran and were fine.

    Both switches are process-wide and model workers run passes in parallel threads, so the
    first pass in sets them and the last one out puts back what it found: a pass never has them
    put back under it by another that finished first. (A torch pass of another model running
    meanwhile also gets the native kernels: slower, and equal to within float rounding.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._saved = (True, True)

    @contextmanager
    def __call__(self) -> Iterator[None]:
        import torch

        with self._lock:
            if self._inside == 0:
                (nnpack,) = torch.backends.nnpack.set_flags(False)  # answers what it was
                self._saved = (torch.backends.mkldnn.enabled, nnpack)
                torch.backends.mkldnn.enabled = False
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0:
                    torch.backends.mkldnn.enabled, nnpack = self._saved
                    torch.backends.nnpack.set_flags(nnpack)


native_kernels = _NativeKernels()


class TorchForward:
    """The SpeechBrain module itself, with torch's default kernels (oneDNN) or its own native ones."""

    def __init__(self, module: Any, *, onednn: bool) -> None:
        self.name = TORCH if onednn else TORCH_NO_ONEDNN
        self._module = module
        self._onednn = onednn

    def __call__(self, feats: torch.Tensor, lens: torch.Tensor) -> np.ndarray:
        import torch

        with torch.inference_mode(), nullcontext() if self._onednn else native_kernels():
            out = self._module(feats, lens)
        return out.reshape(out.shape[0], -1).float().cpu().numpy()


class OnnxForward:
    """The install-time export (encoders/ecapa_onnx.py) in onnxruntime, on the CPU."""

    name = ONNXRUNTIME

    def __init__(self, path: Path, *, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, feats: torch.Tensor, lens: torch.Tensor) -> np.ndarray:
        inputs = {"feats": feats.detach().cpu().numpy(), "lens": lens.detach().cpu().numpy().astype(np.float32)}
        out = self._session.run(None, inputs)[0]
        return np.asarray(out, dtype=np.float32).reshape(out.shape[0], -1)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two [B, D] arrays."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def agreement(reference: Forward, candidate: Forward, feats: torch.Tensor, lens: torch.Tensor) -> float:
    """The worst per-clip cosine between two runtimes on the same inputs."""
    return float(cosines(reference(feats, lens), candidate(feats, lens)).min())


@dataclass(frozen=True)
class RuntimeChoice:
    """What runs ECAPA and why: reported in the log, GetStats and /metrics."""

    name: str
    #: True when --ecapa-runtime named it (nothing else was timed).
    forced: bool
    #: Best-of-rounds warm-up milliseconds per candidate timed (the clip's forward pass only).
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    #: Cosine to torch per candidate checked.
    cosines: Mapping[str, float] = field(default_factory=dict)
    #: Candidates not timed, and why (no export, wrong embedding, ...).
    skipped: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        timed = ", ".join(f"{name} {ms:.0f} ms" for name, ms in self.timings_ms.items()) or "not timed"
        skipped = "".join(f"; {name} skipped: {why}" for name, why in self.skipped.items())
        how = "forced by --ecapa-runtime" if self.forced else "fastest matching torch"
        return f"{self.name} ({how}; {timed}{skipped})"


def time_candidates(
    candidates: Mapping[str, Forward], feats: torch.Tensor, lens: torch.Tensor, rounds: int, *, warm: bool = False
) -> dict[str, float]:
    """Best milliseconds per candidate over `rounds`; unless `warm`, one untimed call each first (lazy init).

    The best, not the median: a neighbour's load only ever adds time, so the minimum is the
    steadiest estimate of a runtime's own speed from a handful of runs.
    """
    for forward in () if warm else candidates.values():
        forward(feats, lens)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, forward in candidates.items():  # interleaved: drift in load hits every candidate alike
            started = time.perf_counter()
            forward(feats, lens)
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: round(min(values), 2) for name, values in samples.items()}


def select(
    candidates: Mapping[str, Forward],
    reference: Forward,
    feats: torch.Tensor,
    lens: torch.Tensor,
    *,
    rounds: int = 5,
    skipped: Mapping[str, str] | None = None,
) -> RuntimeChoice:
    """The fastest candidate whose embedding matches `reference` (torch) within MIN_COSINE."""
    skipped = dict(skipped or {})
    expected = reference(feats, lens)
    agreeing: dict[str, Forward] = {}
    measured_cosines: dict[str, float] = {}
    for name, forward in candidates.items():
        cosine = float(cosines(expected, forward(feats, lens)).min())
        measured_cosines[name] = round(cosine, 7)
        if cosine >= MIN_COSINE:
            agreeing[name] = forward
        else:
            skipped[name] = f"cosine {cosine:.6f} to torch < {MIN_COSINE}"
    if not agreeing:
        raise RuntimeError(f"no ECAPA runtime matches torch: {skipped}")
    timings = time_candidates(agreeing, feats, lens, rounds, warm=True)  # the cosine check was the first call
    fastest = min(timings, key=lambda name: (timings[name], CANDIDATES.index(name)))
    return RuntimeChoice(fastest, False, timings, measured_cosines, skipped)


def warmup_clip(sample_rate: int, seconds: float = 5.0) -> np.ndarray:
    """A fixed, voiced-like test signal: a 5 s clip sets the forward pass's cost, not its content.

    Synthetic so the service needs no audio file to start; deterministic so two starts time
    the same input. A gliding harmonic series under a syllable-rate envelope, plus quiet noise.
    """
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    f0 = 140 + 25 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.5 * t) ** 2
    noise = np.random.default_rng(11).standard_normal(t.size) * 0.01
    clip = 0.3 * envelope * voiced / 3 + noise
    return clip.astype(np.float32)
