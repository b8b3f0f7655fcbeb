"""The README's error table, row by row, against live services.

The table is read from README.md (between the error-table markers); every row must have a
way to make it happen here, and every way here must be a row there, so the documentation
and the services cannot drift apart. Each row's status code and BadRequest field paths are
checked on the wire, through a real channel.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from services.common import tokens
from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis, free_port
from services.embedder import server as embedder_server
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.settings import SynthesizerSettings
from tests.audio_fixtures import encode
from tests.conftest import CountingEncoder, Services
from voxcache import VoxcacheError, tensors
from voxcache.v1 import embedder_pb2 as epb
from voxcache.v1 import embedder_pb2_grpc, synthesizer_pb2_grpc, tensor_pb2
from voxcache.v1 import synthesizer_pb2 as spb


@dataclass(frozen=True)
class Row:
    rpc: str
    condition: str
    status: str
    fields: tuple[str, ...]


def documented_rows() -> list[Row]:
    text = (REPO_ROOT / "README.md").read_text()
    table = text.split("<!-- error-table -->", 1)[1].split("<!-- /error-table -->", 1)[0]
    rows = []
    for line in [line for line in table.strip().splitlines() if line.strip()][2:]:  # skip header and rule
        rpc, condition, status, fields = (cell.strip() for cell in line.strip().strip("|").split("|"))
        rows.append(Row(rpc, condition, status.strip("`"), tuple(re.findall(r"`([^`]+)`", fields))))
    return rows


@dataclass
class Rig:
    services: Services
    speech: dict[str, Any]
    encoder: CountingEncoder
    redis: LocalRedis
    prefix: str
    embedder: embedder_pb2_grpc.EmbedderStub
    synthesizer: synthesizer_pb2_grpc.SynthesizerStub


Make = Callable[[Rig], Awaitable[object]]


def embed(**request: Any) -> Make:
    return lambda rig: rig.embedder.Embed(epb.EmbedRequest(**request), timeout=30)


def embed_audio(make: Callable[[Rig], bytes]) -> Make:
    return lambda rig: rig.embedder.Embed(epb.EmbedRequest(audio=make(rig)), timeout=30)


def search(**request: Any) -> Make:
    return lambda rig: rig.embedder.SearchVoices(epb.SearchVoicesRequest(**request), timeout=30)


def say(**request: Any) -> Callable[[Rig], Awaitable[object]]:
    async def call(rig: Rig) -> object:
        if "reference_audio" not in request and not {"voice_id", "conditioning"} & set(request):
            request.setdefault("reference_audio", rig.speech["wav"])
        return await rig.synthesizer.Synthesize(spb.SynthesizeRequest(**request), timeout=60)

    return call


def say_without_voice(text: str) -> Make:
    return lambda rig: rig.synthesizer.Synthesize(spb.SynthesizeRequest(text=text), timeout=60)


def inline(dtype: int, shape: list[int], data: bytes, encoder: str = "ecapa") -> tensor_pb2.Conditioning:
    return tensor_pb2.Conditioning(
        encoder=encoder, tensors={"speaker": tensor_pb2.Tensor(dtype=dtype, shape=shape, data=data)}
    )


UNIT = (np.ones(192) / np.sqrt(192)).astype(np.float32)
F32 = tensor_pb2.DTYPE_FLOAT32


def speech_at(rig: Rig, rate: int) -> bytes:
    samples, source_rate = rig.speech["samples"], rig.speech["rate"]
    return encode(samples[:: max(1, source_rate // rate)], rate)


def with_nan(rig: Rig) -> bytes:
    samples = rig.speech["samples"].copy()
    samples[5] = np.nan
    return encode(samples, rig.speech["rate"], subtype="FLOAT")


async def taken_name(rig: Rig) -> object:
    request = epb.RegisterVoiceRequest(voice_id="taken", audio=rig.speech["wav"])
    await rig.embedder.RegisterVoice(request, timeout=30)
    return await rig.embedder.RegisterVoice(request, timeout=30)


async def model_fails(rig: Rig) -> object:
    """The real model raising on a clip that passed every check (as ECAPA does on degenerate input)."""

    def fail() -> None:
        raise RuntimeError("degenerate embedding")

    rig.encoder.before = fail
    try:
        return await rig.embedder.Embed(epb.EmbedRequest(audio=rig.speech["wav"]), timeout=30)
    finally:
        rig.encoder.before = None


async def past_deadline(rig: Rig) -> object:
    gate = threading.Event()
    rig.encoder.before = lambda: gate.wait(10)
    try:
        return await rig.embedder.Embed(epb.EmbedRequest(audio=rig.speech["wav"]), timeout=0.3)
    finally:
        gate.set()


async def overloaded(rig: Rig) -> object:
    """An Embedder admitting one extraction: a second distinct miss is refused at once."""
    settings = replace(
        EmbedderSettings(),
        port=0,
        metrics_port=0,
        redis_url=rig.redis.url,
        cache_prefix=rig.prefix + "q",
        max_pending=1,
    )
    running = await embedder_server.start(settings, encoders={"ecapa": rig.encoder})
    gate = threading.Event()
    rig.encoder.before = lambda: gate.wait(10)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            first = asyncio.ensure_future(stub.Embed(epb.EmbedRequest(audio=rig.speech["wav"]), timeout=30))
            await asyncio.sleep(0.2)
            try:
                return await stub.Embed(epb.EmbedRequest(audio=speech_at(rig, 8000)), timeout=30)
            finally:
                gate.set()
                await first
    finally:
        rig.encoder.before = None
        await running.stop()


async def embedder_gone(rig: Rig) -> object:
    settings = replace(SynthesizerSettings(), port=0, embedder_address=f"127.0.0.1:{free_port()}")
    running = await synthesizer_server.start(
        settings, backends={"kokoro": rig.services.synthesizer.core.backends["kokoro"]}
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = synthesizer_pb2_grpc.SynthesizerStub(channel)
            request = spb.SynthesizeRequest(text="Hi.", reference_audio=rig.speech["wav"])
            return await stub.Synthesize(request, timeout=30)
    finally:
        await running.stop()


async def with_token_auth(rig: Rig, metadata: tuple[tuple[str, str], ...]) -> object:
    """An Embedder with --auth token (one tenant, acme), called with `metadata`."""
    folder = Path(tempfile.mkdtemp())
    tokens_file = folder / "tokens.json"
    token = tokens.add(tokens_file, "acme")
    settings = replace(
        EmbedderSettings(),
        port=0,
        metrics_port=0,
        redis_url=rig.redis.url,
        cache_prefix=rig.prefix + "auth",
        auth="token",
        auth_tokens_file=str(tokens_file),
    )
    running = await embedder_server.start(settings, encoders={"ecapa": rig.encoder})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            bearer = tuple((k, v.replace("{token}", token)) for k, v in metadata)
            return await stub.Embed(epb.EmbedRequest(audio=rig.speech["wav"]), metadata=bearer, timeout=30)
    finally:
        await running.stop()
        shutil.rmtree(folder)


HOW: dict[tuple[str, str], Make] = {
    ("Embed", "empty audio"): embed(audio=b""),
    ("Embed", "bytes that are not WAV, FLAC or OGG"): embed(audio=b"\x00\x01 definitely not audio" * 50),
    ("Embed", "truncated file"): embed_audio(lambda rig: rig.speech["wav"][: len(rig.speech["wav"]) // 2]),
    ("Embed", "shorter than 1 s"): embed_audio(
        lambda rig: encode(rig.speech["samples"][: rig.speech["rate"] // 3], rig.speech["rate"])
    ),
    ("Embed", "silent (RMS below -60 dBFS)"): embed_audio(lambda rig: encode(np.zeros(32_000, np.float32), 16_000)),
    ("Embed", "NaN or infinite samples"): embed_audio(with_nan),
    ("Embed", "float samples beyond ±16 (full scale is ±1)"): embed_audio(
        lambda rig: encode((rig.speech["samples"] * 1e18).astype(np.float32), rig.speech["rate"], subtype="FLOAT")
    ),
    ("Embed", "a clip the model cannot use (it fails or returns non-finite values)"): model_fails,
    ("Embed", "sample rate outside 8-96 kHz"): embed_audio(lambda rig: speech_at(rig, 4000)),
    ("Embed", "neither audio nor voice_id"): embed(),
    ("Embed", "malformed voice_id"): embed(voice_id="../etc/passwd"),
    ("Embed", "unknown encoder"): lambda rig: rig.embedder.Embed(
        epb.EmbedRequest(audio=rig.speech["wav"], encoder="xvector"), timeout=30
    ),
    ("Embed", "unknown voice_id"): embed(voice_id="nobody"),
    ("Embed", "upload over `--max-audio-mb` (16 MiB default)"): embed(audio=b"RIFF" + bytes(2_500_000)),
    ("Embed", "clip over `--max-duration-s` (30 s default)"): embed_audio(
        lambda rig: encode(np.tile(rig.speech["samples"], 8), rig.speech["rate"])
    ),
    ("Embed", "more extractions queued than `--max-pending` (64 default)"): overloaded,
    ("Embed", "the caller's deadline ran out"): past_deadline,
    ("RegisterVoice", "a taken name without `overwrite`"): taken_name,
    ("RegisterVoice", "malformed voice_id"): lambda rig: rig.embedder.RegisterVoice(
        epb.RegisterVoiceRequest(voice_id="no spaces!", audio=rig.speech["wav"]), timeout=30
    ),
    ("DeleteVoice", "unknown voice_id"): lambda rig: rig.embedder.DeleteVoice(
        epb.DeleteVoiceRequest(voice_id="nobody"), timeout=30
    ),
    ("SearchVoices", "no query"): search(),
    ("SearchVoices", "k over 100"): search(vector=tensors.to_proto(UNIT), k=101),
    ("SearchVoices", "a vector of another length than the encoder's (192 for ecapa)"): search(
        vector=tensors.to_proto(UNIT[:96])
    ),
    ("SearchVoices", "conditioning from another encoder"): search(conditioning=inline(F32, [192], UNIT.tobytes(), "x")),
    ("SearchVoices", "unknown voice_id"): search(voice_id="nobody"),
    ("Synthesize", "empty text"): say(text="  "),
    ("Synthesize", "text over `--max-text-chars` (2,000 default)"): say(text="a" * 2001),
    ("Synthesize", "text with nothing speakable"): say(text="... !!! ???"),
    ("Synthesize", "unsupported language"): say(text="Bonjour.", language="fr"),
    ("Synthesize", "speed outside 0.5-2.0"): say(text="Hi there.", speed=2.5),
    ("Synthesize", "no voice"): say_without_voice("Hi there."),
    ("Synthesize", "unknown backend"): say(text="Hi there.", backend="tacotron"),
    ("Synthesize", "unknown kokoro voice in backend_options"): say(text="Hi.", backend_options={"voice": "af_heart"}),
    ("Synthesize", "a backend option the backend does not take"): say(text="Hi.", backend_options={"pitch": "high"}),
    ("Synthesize", "an audio format the contract does not define"): say(text="Hi.", format=99),
    ("Synthesize", "inline tensor with an unknown dtype"): say(
        text="Hi.", conditioning=inline(0, [192], UNIT.tobytes())
    ),
    ("Synthesize", "inline tensor whose bytes do not match its shape"): say(
        text="Hi.", conditioning=inline(F32, [192], UNIT.tobytes()[:400])
    ),
    ("Synthesize", "inline tensor of the wrong shape"): say(
        text="Hi.", conditioning=inline(F32, [96], UNIT[:96].tobytes())
    ),
    ("Synthesize", "inline tensor with NaN"): say(
        text="Hi.",
        conditioning=inline(F32, [192], np.where(np.arange(192) == 3, np.nan, UNIT).astype(np.float32).tobytes()),
    ),
    ("Synthesize", "inline conditioning from another encoder"): say(
        text="Hi.", conditioning=inline(F32, [192], UNIT.tobytes(), encoder="indextts2")
    ),
    ("Synthesize", "reference audio the Embedder refuses"): say(text="Hi.", reference_audio=b"junk" * 100),
    ("Synthesize", "unknown voice_id"): say(text="Hi.", voice_id="ghost"),
    ("Synthesize", "the Embedder is unreachable"): embedder_gone,
    ("any RPC", "no bearer token, or one not in the tokens file (`--auth token`)"): lambda rig: with_token_auth(
        rig, (("authorization", "Bearer vxc_made-up"),)
    ),
    ("any RPC", "`voxcache-tenant` set by a caller that is not a delegate"): lambda rig: with_token_auth(
        rig, (("authorization", "Bearer {token}"), ("voxcache-tenant", "globex"))
    ),
    ("Synthesize", "the caller's deadline ran out"): lambda rig: rig.synthesizer.Synthesize(
        spb.SynthesizeRequest(text="One sentence. " * 40, reference_audio=rig.speech["wav"]), timeout=0.5
    ),
}

ROWS = documented_rows()


def test_every_documented_row_is_exercised_and_every_exercise_is_documented() -> None:
    documented = {(row.rpc, row.condition) for row in ROWS}
    assert len(documented) == len(ROWS), "a README row is listed twice"
    assert documented - HOW.keys() == set(), "README rows with no test here"
    assert HOW.keys() - documented == set(), "tested conditions missing from the README"


@pytest.mark.parametrize("row", ROWS, ids=[f"{row.rpc}: {row.condition}" for row in ROWS])
async def test_row(
    row: Row,
    services: Services,
    speech: dict[str, Any],
    encoder: CountingEncoder,
    redis_server: LocalRedis,
    prefix: str,
) -> None:
    make = HOW.get((row.rpc, row.condition))
    assert make is not None, f"no way to make {row} happen"
    async with (
        grpc.aio.insecure_channel(services.embedder_address) as embedder_channel,
        grpc.aio.insecure_channel(services.synthesizer_address) as synthesizer_channel,
    ):
        rig = Rig(
            services,
            speech,
            encoder,
            redis_server,
            prefix,
            embedder_pb2_grpc.EmbedderStub(embedder_channel),
            synthesizer_pb2_grpc.SynthesizerStub(synthesizer_channel),
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await make(rig)
    error = VoxcacheError.from_rpc_error(caught.value)
    assert error.code.name == row.status, (row, error)
    assert error.fields == row.fields, (row, error)
    if row.status == "NOT_FOUND":
        assert error.resource is not None and error.resource[0] == "voxcache.v1.Voice", error
