"""ECAPA's runtimes: the install-time ONNX export, each runtime against torch, `auto` and its report.

Real parts only: the real weights, an export made by the install step itself into a
temporary model folder (the weights linked in), espeak-ng speech, a real server.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis, free_port
from services.common.weights import WeightsError
from services.embedder import audio
from services.embedder import server as embedder_server
from services.embedder.encoders import ecapa_onnx, runtimes
from services.embedder.encoders.ecapa import MANIFEST, EcapaEncoder
from services.embedder.encoders.install import export_ecapa_onnx
from services.embedder.settings import EmbedderSettings
from voxcache import AsyncEmbedderClient
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc

WEIGHTS = REPO_ROOT / "models" / "ecapa"


def weights_only(folder: Path) -> Path:
    """A model folder holding the verified weights (linked) and nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    for spec in MANIFEST.files:
        (folder / spec.name).symlink_to((WEIGHTS / spec.name).resolve())
    return folder


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The weights plus the ONNX export exactly as scripts/setup.sh makes it."""
    folder = weights_only(tmp_path_factory.mktemp("ecapa-onnx") / "ecapa")
    export_ecapa_onnx(folder)
    return folder


def samples_16k(wav: bytes) -> np.ndarray:
    return audio.decode(wav, EmbedderSettings().audio_limits, target_rate=16_000).samples


def test_the_install_step_records_a_verified_export(exported: Path) -> None:
    record = json.loads((exported / ecapa_onnx.RECORD_FILE).read_text())
    assert record["weights_digest"] == MANIFEST.digest and record["min_cosine"] >= runtimes.MIN_COSINE
    found, why = ecapa_onnx.find_export(exported, MANIFEST.digest)
    assert found is not None, why


@pytest.mark.parametrize("runtime", runtimes.CANDIDATES)
def test_each_runtime_matches_torch_on_speech(
    runtime: str, exported: Path, ecapa: EcapaEncoder, speech: dict[str, Any], other_speech: bytes
) -> None:
    forced = EcapaEncoder(exported, device="cpu", threads=2, runtime=runtime)
    assert forced.runtime.name == runtime and forced.runtime.forced
    for wav in (speech["wav"], other_speech):
        clip = samples_16k(wav)
        cosine = float(forced.encode(clip)["speaker"] @ ecapa.encode(clip)["speaker"])
        assert cosine >= runtimes.MIN_COSINE, (runtime, cosine)


def test_auto_times_every_candidate_and_keeps_one(exported: Path) -> None:
    chosen = EcapaEncoder(exported, device="cpu", threads=2, runtime=runtimes.AUTO).runtime
    assert not chosen.forced and chosen.name in runtimes.CANDIDATES
    assert set(chosen.timings_ms) == set(runtimes.CANDIDATES) and not chosen.skipped
    assert chosen.timings_ms[chosen.name] == min(chosen.timings_ms.values())
    assert all(cosine >= runtimes.MIN_COSINE for cosine in chosen.cosines.values())


def kernel_switches() -> tuple[bool, bool]:
    """(oneDNN, NNPACK) as torch will use them for the next convolution."""
    import torch

    return torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled()


def test_torch_without_onednn_runs_a_full_batch_on_native_kernels(ecapa: EcapaEncoder) -> None:
    """With only oneDNN off, torch gives a batch of 16 clips to NNPACK, 14x slower here (runtimes.py)."""
    from torch.profiler import ProfilerActivity, profile

    before = kernel_switches()
    forward = runtimes.TorchForward(ecapa.embedding_module, onednn=False)
    rng = np.random.default_rng(16)
    feats, lens = ecapa.features([rng.standard_normal(8_000).astype(np.float32) * 0.1 for _ in range(16)])
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        forward(feats, lens)
    ops = {event.key for event in profiled.key_averages()}
    assert "aten::_slow_conv2d_forward" in ops, sorted(op for op in ops if "conv" in op)
    assert not any("nnpack" in op or "mkldnn" in op for op in ops), sorted(op for op in ops if "conv" in op)
    assert kernel_switches() == before


def test_native_kernels_stay_until_the_last_pass_in_leaves() -> None:
    """Two model workers' passes overlap: the first to finish must not switch oneDNN back under the other."""
    before = kernel_switches()
    first, second = runtimes.native_kernels(), runtimes.native_kernels()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert kernel_switches() == (False, False)
    second.__exit__(None, None, None)
    assert kernel_switches() == before


def test_a_missing_stale_or_altered_export_is_skipped(tmp_path: Path, exported: Path) -> None:
    bare = weights_only(tmp_path / "bare")
    assert "no ONNX export" in ecapa_onnx.find_export(bare, MANIFEST.digest)[1]
    assert "stale" in ecapa_onnx.find_export(exported, "another-weights-digest")[1]
    altered = weights_only(tmp_path / "altered")
    (altered / ecapa_onnx.ONNX_FILE).write_bytes((exported / ecapa_onnx.ONNX_FILE).read_bytes() + b"\0")
    (altered / ecapa_onnx.RECORD_FILE).write_text((exported / ecapa_onnx.RECORD_FILE).read_text())
    assert "does not match its recorded SHA-256" in ecapa_onnx.find_export(altered, MANIFEST.digest)[1]

    without = EcapaEncoder(bare, device="cpu", threads=2, runtime=runtimes.AUTO).runtime
    assert runtimes.ONNXRUNTIME in without.skipped and without.name != runtimes.ONNXRUNTIME
    with pytest.raises(WeightsError, match="onnxruntime cannot run: no ONNX export"):
        EcapaEncoder(bare, device="cpu", threads=2, runtime=runtimes.ONNXRUNTIME)


async def test_getstats_and_metrics_report_the_choice(
    exported: Path, redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    encoder = EcapaEncoder(exported, device="cpu", threads=2, runtime=runtimes.AUTO)
    chosen = encoder.runtime.name
    port = free_port()
    settings = replace(EmbedderSettings(), port=0, metrics_port=port, redis_url=redis_server.url, cache_prefix=prefix)
    running = await embedder_server.start(settings, encoders={"ecapa": encoder})
    try:
        async with AsyncEmbedderClient(f"127.0.0.1:{running.port}") as client:
            await client.embed(speech["wav"])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stats = await embedder_pb2_grpc.EmbedderStub(channel).GetStats(pb.GetStatsRequest(), timeout=10)
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read())
    finally:
        await running.stop()
    reported = stats.encoder_runtimes["ecapa"]
    assert reported.runtime == chosen and not reported.forced
    assert set(reported.warmup_ms) == set(runtimes.CANDIDATES)
    assert stats.forward_passes == 1 and stats.batched_clips == 0
    text = body.decode()
    assert f'voxcache_encoder_runtime_info{{encoder="ecapa",forced="false",runtime="{chosen}"}} 1.0' in text
    for candidate in runtimes.CANDIDATES:
        assert f'voxcache_encoder_runtime_warmup_seconds{{encoder="ecapa",runtime="{candidate}"}}' in text
