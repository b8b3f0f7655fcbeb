"""IndexTTS2 on upstream's own classes: the Embedder's front end, cache injection, the services.

Every model object here is the PyPI package's real `indextts.infer_v2.IndexTTS2` over real
UnifiedVoice / s2mel / BigVGAN / CAMPPlus / w2v-BERT / RepCodec modules with tiny seeded
random weights (tests/indextts2_tiny.py), loaded by the services' own loaders. Random
weights speak noise, not words; what these tests pin down is plumbing, bit for bit:
what the Embedder caches is what upstream computes, and what the Synthesizer speaks from the
cache is what upstream speaks from the file.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
import torch

from services.common.errors import InvalidInput
from services.common.indextts2 import load_generator, parameter_bytes
from services.common.redis_server import LocalRedis
from services.common.weights import WeightsError
from services.embedder import server as embedder_server
from services.embedder.conditioning import check_tensors
from services.embedder.encoders.indextts2 import MODEL_FILES, IndexTTS2Encoder, checkpoint_manifest
from services.embedder.encoders.storage import Float16Storage
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.backends.base import Segment
from services.synthesizer.backends.indextts2 import IndexTTS2Backend
from services.synthesizer.settings import SynthesizerSettings
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from tests.conftest import IndexTTS2Models
from voxcache import AsyncEmbedderClient, AsyncSynthesizerClient
from voxcache.tensors import EMO_COND_EMB, PROMPT_CONDITION, REF_MEL, SPK_COND_EMB, STYLE

#: A random GPT may emit its stop code at step 0; min_new_tokens keeps it speaking, and the
#: lengths stay inside the tiny model's position tables.
GENERATION = {"num_beams": 1, "min_new_tokens": 8, "max_mel_tokens": 24}
SENTENCE = "Hello there."
SEED = 5
#: upstream's slot -> the tensor name the Embedder gives the same value.
SLOTS = {
    "cache_spk_cond": SPK_COND_EMB,
    "cache_s2mel_style": STYLE,
    "cache_s2mel_prompt": PROMPT_CONDITION,
    "cache_mel": REF_MEL,
    "cache_emo_cond": EMO_COND_EMB,
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    """Two voices as 22.05 kHz PCM16 WAV files (the rate upstream loads at) and their bytes."""
    tmp = tmp_path_factory.mktemp("voices")
    out = {}
    for name, sentence, voice in (("a", SENTENCES[0], "en-us"), ("b", SENTENCES[1], "en-gb")):
        samples, rate = espeak(sentence, voice=voice)
        wav = encode(fit_duration(samples, rate, 3.0), rate)
        (tmp / f"{name}.wav").write_bytes(wav)
        out[name] = (tmp / f"{name}.wav", wav)
    return out


@pytest.fixture(scope="module")
def encoder(indextts2: IndexTTS2Models) -> IndexTTS2Encoder:
    return IndexTTS2Encoder(indextts2.front, weights_digest="tiny-" + "0" * 59)


@pytest.fixture(scope="module")
def backend(indextts2: IndexTTS2Models) -> IndexTTS2Backend:
    return IndexTTS2Backend(indextts2.generator, generation_defaults=GENERATION)


def upstream_from_path(models: IndexTTS2Models, path: Path, text: str = SENTENCE) -> tuple[np.ndarray, dict[str, Any]]:
    """Upstream's own infer on the reference file (its front end runs), seeded; the audio and
    the conditioning it left in its slots."""
    models.full._init_cache()
    torch.manual_seed(SEED)
    rate, pcm = models.full.infer(str(path), text, None, **GENERATION)
    assert rate == 22_050
    slots = {name: getattr(models.full, slot).detach().numpy().copy() for slot, name in SLOTS.items()}
    return pcm[:, 0].copy(), slots


@pytest.fixture(scope="module")
def reference(indextts2: IndexTTS2Models, clips: dict[str, tuple[Path, bytes]]) -> dict[str, Any]:
    return {name: upstream_from_path(indextts2, path) for name, (path, _) in clips.items()}


def speak(backend: IndexTTS2Backend, bundle: dict[str, np.ndarray], text: str = SENTENCE) -> np.ndarray:
    plan = backend.plan(bundle, {"seed": str(SEED)})
    return backend.synthesize(Segment(text, text), plan, language="en", speed=1.0)


def pcm16(samples: np.ndarray) -> np.ndarray:
    return np.round(samples * 32767.0).astype(np.int16)


@dataclass
class Stack:
    embedder: str
    synthesizer: str


@pytest_asyncio.fixture
async def stack(
    encoder: IndexTTS2Encoder, backend: IndexTTS2Backend, redis_server: LocalRedis, prefix: str
) -> AsyncIterator[Stack]:
    """Embedder (Redis) + Synthesizer over gRPC, two syntheses allowed at once."""
    settings = replace(EmbedderSettings(), port=0, metrics_port=0, redis_url=redis_server.url, cache_prefix=prefix)
    embedder = await embedder_server.start(settings, encoders={"indextts2": encoder})
    synth_settings = replace(
        SynthesizerSettings(),
        port=0,
        backend="indextts2",
        embedder_address=f"127.0.0.1:{embedder.port}",
        synthesis_concurrency=2,
    )
    synthesizer = await synthesizer_server.start(synth_settings, backends={"indextts2": backend})
    yield Stack(f"127.0.0.1:{embedder.port}", f"127.0.0.1:{synthesizer.port}")
    await synthesizer.stop()
    await embedder.stop()


# -- (1) the Embedder's tensors are upstream's ------------------------------------------------
async def test_embedder_tensors_equal_upstreams_front_end(
    stack: Stack, clips: dict[str, tuple[Path, bytes]], reference: dict[str, Any]
) -> None:
    async with AsyncEmbedderClient(stack.embedder) as client:
        first = await client.embed(clips["a"][1], encoder="indextts2")
        again = await client.embed(clips["a"][1], encoder="indextts2")
    expected = reference["a"][1]
    assert set(first.tensors) == set(expected)
    for name, value in expected.items():
        assert first.tensors[name].dtype == np.float32
        assert np.array_equal(first.tensors[name], value), name
    assert again.cache_hit and not first.cache_hit


# -- (2) upstream's infer from the file == upstream's infer from our cached bundle ------------
async def test_synthesis_from_the_cache_equals_upstream_from_the_file(
    stack: Stack, clips: dict[str, tuple[Path, bytes]], reference: dict[str, Any]
) -> None:
    async with AsyncSynthesizerClient(stack.synthesizer) as synth:
        first = await synth.say(SENTENCE, voice=clips["a"][1], options={"seed": str(SEED)})
        second = await synth.say(SENTENCE, voice=clips["a"][1], options={"seed": str(SEED)})
    audio, rate = sf.read(io.BytesIO(first.audio), dtype="int16")
    assert rate == 22_050 and first.backend == "indextts2" and second.conditioning_cache_hit
    assert np.std(reference["a"][0]) > 100  # not silence: the equality below means something
    assert np.array_equal(audio, reference["a"][0])


def test_injected_slots_need_no_file(indextts2: IndexTTS2Models, encoder: IndexTTS2Encoder, clips: Any) -> None:
    """Upstream's own infer, given a reference path that does not exist, speaks from the slots."""
    missing = "/no/such/dir/voice.wav"
    assert not Path(missing).exists()
    bundle = encoder.encode(sf.read(clips["a"][0], dtype="float32")[0])
    tts = indextts2.full
    tts._init_cache()
    for slot, name in SLOTS.items():
        setattr(tts, slot, torch.from_numpy(bundle[name]))
    tts.cache_spk_audio_prompt = tts.cache_emo_audio_prompt = missing
    torch.manual_seed(SEED)
    rate, pcm = tts.infer(missing, SENTENCE, None, **GENERATION)
    assert rate == 22_050 and pcm.shape[0] > 0
    tts._init_cache()


def test_backend_never_reads_audio(
    backend: IndexTTS2Backend, encoder: IndexTTS2Encoder, clips: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import librosa

    bundle = encoder.encode(sf.read(clips["a"][0], dtype="float32")[0])

    def no_files(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"upstream tried to read audio: {args}")

    monkeypatch.setattr(librosa, "load", no_files)
    assert speak(backend, bundle).shape[0] > 0


# -- (3) two voices from concurrent requests ---------------------------------------------------
async def test_two_voices_interleaved_concurrently_each_keep_their_voice(
    stack: Stack, clips: dict[str, tuple[Path, bytes]], reference: dict[str, Any]
) -> None:
    """Two syntheses run at once (synthesis_concurrency=2). Without the backend's lock the
    requests overwrite each other's slots, GPT prompt and seeded RNG mid-generation, and the
    audio stops matching upstream's for that voice (or upstream tries to open the key)."""
    order = ["a", "b", "a", "b", "b", "a"]
    async with AsyncSynthesizerClient(stack.synthesizer) as synth:
        results = await asyncio.gather(
            *(synth.say(SENTENCE, voice=clips[name][1], options={"seed": str(SEED)}) for name in order)
        )
    assert not np.array_equal(reference["a"][0][:1000], reference["b"][0][:1000])
    for name, result in zip(order, results, strict=True):
        audio, _ = sf.read(io.BytesIO(result.audio), dtype="int16")
        assert np.array_equal(audio, reference[name][0]), name


# -- (4) float16 bundles ------------------------------------------------------------------------
#: float16 vs float32 bundles, in PCM16 steps: at most 1 step anywhere, on at most 1 % of the
#: samples (measured: 1 step on a handful of samples). The tiny random s2mel + BigVGAN barely
#: respond to conditioning (their audio is set mostly by the GPT's codes), so a coarser
#: corruption moves the audio by only a few steps: the bound has to be this tight to mean anything.
FLOAT16_MAX_STEPS = 1
FLOAT16_MAX_CHANGED = 0.01


def test_float16_bundle_speaks_within_tolerance_of_float32(
    backend: IndexTTS2Backend, encoder: IndexTTS2Encoder, clips: Any
) -> None:
    samples = sf.read(clips["a"][0], dtype="float32")[0]
    full = encoder.encode(samples)
    half = Float16Storage(encoder).encode(samples)
    check_tensors(encoder.tensors, full)  # each declares exactly what it returns: hits are checked against it
    check_tensors(Float16Storage(encoder).tensors, half)
    for name, array in half.items():
        assert array.dtype == np.float16
        assert np.allclose(array.astype(np.float32), full[name], rtol=2**-10, atol=1e-4), name
    exact, rounded = pcm16(speak(backend, full)).astype(np.int32), pcm16(speak(backend, half)).astype(np.int32)
    assert rounded.shape == exact.shape
    steps = np.abs(rounded - exact)
    assert steps.max() <= FLOAT16_MAX_STEPS
    assert np.count_nonzero(steps) <= FLOAT16_MAX_CHANGED * len(steps)


# -- each side loads its half -------------------------------------------------------------------
def test_each_service_loads_only_its_half(indextts2: IndexTTS2Models) -> None:
    front, generator = parameter_bytes(indextts2.front), parameter_bytes(indextts2.generator)
    print(f"\nparameter bytes (tiny config): Embedder {front}\n  Synthesizer {generator}")
    assert set(front) == {"semantic_model", "semantic_codec", "campplus_model", "s2mel"}
    assert set(indextts2.front.s2mel.models) == {"length_regulator"}
    assert set(generator) == {"gpt", "s2mel", "bigvgan", "semantic_codec"}
    assert indextts2.generator.qwen_emo is None
    # infer touches the codec only through quantizer.vq2emb: nothing else of it is kept.
    assert [name for name, _ in indextts2.generator.semantic_codec.named_children()] == ["quantizer"]
    for attribute in ("semantic_model", "campplus_model", "extract_features"):
        assert not hasattr(indextts2.generator, attribute)
    for attribute in ("gpt", "bigvgan", "tokenizer"):
        assert not hasattr(indextts2.front, attribute)


def test_emotion_model_loads_only_when_asked(indextts2: IndexTTS2Models) -> None:
    """The tiny checkpoint has no Qwen directory: asking for emotion text must try to load it."""
    with pytest.raises(OSError, match="qwen_tiny"):
        load_generator(indextts2.model_dir, indextts2.hf_cache, device="cpu", text_normalizer=False, emotion_text=True)


# -- options the backend cannot honour are refused -----------------------------------------------
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"emo_alpha": "0.5"}, "backend_options[emo_alpha]"),
        ({"use_emo_text": "true"}, "backend_options[use_emo_text]"),
        ({"use_random": "true"}, "backend_options[use_random]"),
        ({"max_mel_tokens": "5000"}, "backend_options[max_mel_tokens]"),
        ({"emo_vector": "1,2"}, "backend_options[emo_vector]"),
        ({"wobble": "1"}, "backend_options"),
    ],
)
def test_unhonourable_options_are_refused(
    backend: IndexTTS2Backend, encoder: IndexTTS2Encoder, clips: Any, options: dict[str, str], field: str
) -> None:
    bundle = encoder.encode(sf.read(clips["a"][0], dtype="float32")[0])
    with pytest.raises(InvalidInput) as caught:
        backend.plan(bundle, options)
    assert caught.value.field == field


async def test_speed_and_language_are_refused_by_name(stack: Stack, clips: Any) -> None:
    async with AsyncSynthesizerClient(stack.synthesizer) as synth:
        for kwargs, field in (({"speed": 1.5}, "speed"), ({"language": "fr"}, "language")):
            with pytest.raises(Exception) as caught:
                await synth.say(SENTENCE, voice=clips["a"][1], **kwargs)
            assert "INVALID_ARGUMENT" in str(caught.value.code) and caught.value.field == field  # type: ignore[attr-defined]


def test_emotion_vector_reaches_upstream(backend: IndexTTS2Backend, encoder: IndexTTS2Encoder, clips: Any) -> None:
    bundle = encoder.encode(sf.read(clips["a"][0], dtype="float32")[0])
    plain = speak(backend, bundle)
    plan = backend.plan(bundle, {"seed": str(SEED), "emo_vector": "0,0,0.8,0,0,0,0,0", "emo_alpha": "0.9"})
    sad = backend.synthesize(Segment(SENTENCE, SENTENCE), plan, language="en", speed=1.0)
    assert sad.shape[0] > 0 and not np.array_equal(pcm16(sad[: len(plain)]), pcm16(plain[: len(sad)]))


def test_bad_bundles_are_refused(backend: IndexTTS2Backend, encoder: IndexTTS2Encoder, clips: Any) -> None:
    bundle = encoder.encode(sf.read(clips["a"][0], dtype="float32")[0])
    with pytest.raises(InvalidInput, match="lacks tensor 'style'"):
        backend.plan({k: v for k, v in bundle.items() if k != STYLE}, {})
    with pytest.raises(InvalidInput, match="frames"):
        backend.plan({**bundle, REF_MEL: bundle[REF_MEL][:, :, :-5]}, {})


def test_checkpoint_digest_follows_every_file(indextts2: IndexTTS2Models, tmp_path: Path) -> None:
    """Each file the front end reads moves the cache key, and a missing one is named."""
    import shutil

    model_dir, hf_cache = tmp_path / "checkpoints", tmp_path / "hf_cache"
    shutil.copytree(indextts2.model_dir, model_dir)
    shutil.copytree(indextts2.hf_cache, hf_cache)
    base = checkpoint_manifest(model_dir, hf_cache).digest
    read_by_front_end = [model_dir / name for name in MODEL_FILES]
    read_by_front_end += sorted(p for p in hf_cache.rglob("*") if p.is_file() and "snapshots" in p.parts)
    assert len(read_by_front_end) == 8
    for path in read_by_front_end:
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert checkpoint_manifest(model_dir, hf_cache).digest != base, path
        path.write_bytes(original)
    (hf_cache / "models--funasr--campplus" / "snapshots" / ("0" * 40) / "campplus_cn_common.bin").unlink()
    with pytest.raises(WeightsError, match=r"funasr/campplus/campplus_cn_common\.bin"):
        checkpoint_manifest(model_dir, hf_cache)
