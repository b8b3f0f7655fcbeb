"""The indextts2 path through the real services: Embedder encoder -> Redis -> Synthesizer injection.

IndexTTS2's checkpoints (~9 GB) and a GPU are not here, so the model object is the
test stand-in (tests/standins/indextts, same class, signatures and tensor shapes as
upstream); everything around it — gRPC, Redis, the cache record, float16 storage,
the bundle injection — is the production code.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf

from services.common.redis_server import LocalRedis
from services.embedder import server as embedder_server
from services.embedder.encoders.indextts2 import IndexTTS2Encoder
from services.embedder.encoders.storage import Float16Storage
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.backends.indextts2 import IndexTTS2Backend
from services.synthesizer.backends.indextts2_generate import generate
from services.synthesizer.settings import SynthesizerSettings
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from voxcache import AsyncEmbedderClient, AsyncSynthesizerClient

TEXT = "Hello there. This voice was cloned from a cached bundle!"


@dataclass
class Stack:
    embedder: str
    synthesizer: str


@pytest_asyncio.fixture(params=["float32", "float16"])
async def stack(request: Any, tts: Any, redis_server: LocalRedis, prefix: str) -> AsyncIterator[Stack]:
    encoder: Any = IndexTTS2Encoder(tts, weights_digest="standin-" + "0" * 56)
    if request.param == "float16":
        encoder = Float16Storage(encoder)
    settings = replace(EmbedderSettings(), port=0, metrics_port=0, redis_url=redis_server.url, cache_prefix=prefix)
    embedder = await embedder_server.start(settings, encoders={"indextts2": encoder})
    synth_settings = replace(
        SynthesizerSettings(), port=0, backend="indextts2", embedder_address=f"127.0.0.1:{embedder.port}"
    )
    synthesizer = await synthesizer_server.start(synth_settings, backends={"indextts2": IndexTTS2Backend(tts)})
    yield Stack(f"127.0.0.1:{embedder.port}", f"127.0.0.1:{synthesizer.port}")
    await synthesizer.stop()
    await embedder.stop()


def clip(voice: str, seconds: float) -> bytes:
    samples, rate = espeak(SENTENCES[2], voice)
    return encode(fit_duration(samples, rate, seconds), rate)


async def test_bundle_shapes_dtype_and_cache(stack: Stack, request: Any) -> None:
    dtype = np.float16 if "float16" in request.node.callspec.id else np.float32
    async with AsyncEmbedderClient(stack.embedder) as client:
        first = await client.embed(clip("en-us", 5.0), encoder="indextts2")
        again = await client.embed(clip("en-us", 5.0), encoder="indextts2")
    shapes = {name: array.shape for name, array in first.tensors.items()}
    assert shapes["style"] == (1, 192)
    assert shapes["spk_cond_emb"][0::2] == (1, 1024) and abs(shapes["spk_cond_emb"][1] - 250) <= 2
    assert shapes["ref_mel"][:2] == (1, 80) and abs(shapes["ref_mel"][2] - 5 * 22_050 / 256) <= 2
    assert shapes["prompt_condition"] == (1, shapes["ref_mel"][2], 512)
    assert all(array.dtype == dtype for array in first.tensors.values())
    assert again.cache_hit and all(np.array_equal(first.tensors[k], again.tensors[k]) for k in first.tensors)
    nbytes = sum(a.nbytes for a in first.tensors.values())
    assert nbytes == pytest.approx((2 if dtype == np.float16 else 4) * sum(np.prod(s) for s in shapes.values()))


async def test_float16_and_float32_entries_never_share_a_key(tts: Any) -> None:
    full = IndexTTS2Encoder(tts, weights_digest="d" * 64)
    assert Float16Storage(full).weights_digest != full.weights_digest


async def test_synthesis_injects_the_cached_bundle(stack: Stack, tts: Any) -> None:
    reference = clip("en-gb", 4.0)
    async with AsyncSynthesizerClient(stack.synthesizer) as synth, AsyncEmbedderClient(stack.embedder) as emb:
        first = await synth.say(TEXT, voice=reference)
        second = await synth.say(TEXT, voice=reference)
        bundle = (await emb.embed(reference, encoder="indextts2")).tensors
    samples, rate = sf.read(io.BytesIO(first.audio), dtype="float32")
    assert rate == 22_050 and first.backend == "indextts2" and first.backend_voice == "cloned"
    assert not first.conditioning_cache_hit and second.conditioning_cache_hit
    assert second.audio == first.audio
    # The service speaks sentence by sentence what generate() speaks from the same bundle.
    expected = np.concatenate([generate(tts, s, bundle)[1] for s in ("Hello there.", TEXT.split(". ")[1])])
    pcm = np.frombuffer(first.audio[44:], "<i2").astype(np.float32) / 32767
    assert len(pcm) == len(expected) and np.max(np.abs(pcm - expected)) < 2e-4
    assert float(np.sqrt(np.mean(samples**2))) > 0


async def test_two_voices_concurrently_do_not_mix(stack: Stack) -> None:
    voices = {"a": clip("en-us", 3.0), "b": clip("en-us+m7", 3.5)}
    async with AsyncSynthesizerClient(stack.synthesizer) as synth:
        sequential = {name: (await synth.say(TEXT, voice=wav)).audio for name, wav in voices.items()}
        assert sequential["a"] != sequential["b"]
        order = ["a", "b"] * 4
        results = await asyncio.gather(*(synth.say(TEXT, voice=voices[name]) for name in order))
    assert [r.audio for r in results] == [sequential[name] for name in order]


async def test_inline_bundle_and_shape_errors(stack: Stack) -> None:
    reference = clip("en-us", 3.0)
    async with AsyncSynthesizerClient(stack.synthesizer) as synth, AsyncEmbedderClient(stack.embedder) as emb:
        embedding = await emb.embed(reference, encoder="indextts2")
        by_reference = await synth.say("Inline works.", voice=reference)
        inline = await synth.say("Inline works.", conditioning=embedding)
        assert inline.audio == by_reference.audio
        broken = dict(embedding.tensors)
        broken["ref_mel"] = broken["ref_mel"][:, :, :-5]  # frames no longer match prompt_condition
        with pytest.raises(Exception, match="frames") as caught:
            await synth.say("Inline works.", conditioning=broken)
        assert caught.value.field == "conditioning.tensors"  # type: ignore[attr-defined]
