"""IndexTTS2 encoder + injected generation against the test stand-in of upstream's IndexTTS2.

The stand-in (tests/standins/indextts) mirrors upstream's interface with tiny
deterministic modules, so these tests pin down the plumbing: the Embedder's
IndexTTS2Encoder computes upstream's per-voice tensors with the right shapes, and
generate() fed those tensors speaks exactly what the stand-in's own infer() speaks
from the WAV path -- without touching the model's single-speaker cache, and without
mixing voices across threads.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from services.common.weights import WeightsError
from services.embedder.encoders.indextts2 import ENCODER_FILES, IndexTTS2Encoder
from services.synthesizer.backends.indextts2_generate import generate, generate_segments
from tests.audio_fixtures import SENTENCES, espeak, fit_duration

TEXT = "Hello there. This is a cached voice speaking!"
LONG_TEXT = "The first sentence is here. Then a second one follows it. And a third closes the text."
W2V_RATE = 50.0  # w2v-BERT frames per second (16 kHz, 10 ms fbank hop, stride 2)
MEL_RATE = 22_050 / 256  # ref mel frames per second


@pytest.fixture(scope="module")
def encoder(tts: Any) -> IndexTTS2Encoder:
    return IndexTTS2Encoder(tts, weights_digest="standin")


def _clip(tmp: Path, name: str, sentence: str, voice: str, seconds: float) -> tuple[Path, np.ndarray]:
    samples, rate = espeak(sentence, voice=voice)
    assert rate == 22_050
    path = tmp / f"{name}.wav"
    sf.write(path, fit_duration(samples, rate, seconds), rate, subtype="PCM_16")
    decoded, _ = sf.read(path, dtype="float32")  # exactly what the stand-in's loader reads
    return path, decoded


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, np.ndarray]]:
    tmp = tmp_path_factory.mktemp("indextts2")
    return {
        "a": _clip(tmp, "a", SENTENCES[0], "en-us", 5.0),
        "b": _clip(tmp, "b", SENTENCES[1], "en-gb", 4.0),
        "long": _clip(tmp, "long", SENTENCES[2], "en-us", 20.0),
    }


@pytest.fixture(scope="module")
def bundles(encoder: IndexTTS2Encoder, clips: dict[str, tuple[Path, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    return {name: encoder.encode(samples) for name, (_, samples) in clips.items()}


def _expected_frames(seconds: float) -> tuple[float, float]:
    return W2V_RATE * seconds, MEL_RATE * seconds


@pytest.mark.parametrize(("name", "seconds"), [("a", 5.0), ("long", 15.0)])
def test_encoder_shapes_follow_upstream_frame_rates(
    bundles: dict[str, dict[str, np.ndarray]], name: str, seconds: float
) -> None:
    bundle = bundles[name]
    assert set(bundle) == {"spk_cond_emb", "style", "prompt_condition", "ref_mel"}
    assert all(value.dtype == np.float32 for value in bundle.values())
    t, t_mel = _expected_frames(seconds)  # the 20 s clip is cut to 15 s, as upstream
    assert bundle["spk_cond_emb"].shape[0::2] == (1, 1024)
    assert abs(bundle["spk_cond_emb"].shape[1] - t) <= 2
    assert bundle["style"].shape == (1, 192)
    assert bundle["ref_mel"].shape[:2] == (1, 80)
    assert abs(bundle["ref_mel"].shape[2] - t_mel) <= 2
    assert bundle["prompt_condition"].shape == (1, bundle["ref_mel"].shape[2], 512)
    assert all(np.isfinite(value).all() for value in bundle.values())


def test_encoder_is_fast_and_deterministic(encoder: IndexTTS2Encoder, clips: dict[str, Any]) -> None:
    samples = clips["a"][1]
    first = encoder.encode(samples)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        again = encoder.encode(samples)
        timings.append(time.perf_counter() - started)
        assert all(np.array_equal(first[key], again[key]) for key in first)
    assert min(timings) < 1.0  # a 5 s clip; ~20 ms on two idle cores


def test_encoder_metadata(encoder: IndexTTS2Encoder) -> None:
    assert (encoder.name, encoder.sample_rate, encoder.weights_digest) == ("indextts2", 22_050, "standin")


def test_from_checkpoints_digests_the_files(
    infer_v2: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ENCODER_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    first = IndexTTS2Encoder.from_checkpoints(tmp_path, device="cpu")
    assert isinstance(first.tts, infer_v2.IndexTTS2) and first.tts.qwen_emo is None
    assert len(first.weights_digest) == 64
    (tmp_path / "s2mel.pth").write_bytes(b"other weights")
    assert IndexTTS2Encoder.from_checkpoints(tmp_path, device="cpu").weights_digest != first.weights_digest
    (tmp_path / "hf_cache/campplus_cn_common.bin").unlink()
    with pytest.raises(WeightsError, match=r"missing hf_cache/campplus_cn_common\.bin"):
        IndexTTS2Encoder.from_checkpoints(tmp_path, device="cpu")


@pytest.mark.parametrize(
    ("text", "options", "emotion_from_b"),
    [
        (TEXT, {}, False),
        (LONG_TEXT, {"max_text_tokens_per_segment": 40, "interval_silence": 150}, False),
        (TEXT, {"emo_vector": [0, 0, 0.6, 0, 0, 0, 0, 0.2], "emo_alpha": 0.8}, False),
        (TEXT, {"use_emo_text": True, "emo_text": "what a sad day"}, False),
        (TEXT, {"emo_alpha": 0.6}, True),
    ],
    ids=["one-segment", "three-segments", "emo-vector", "emo-text", "emo-reference"],
)
def test_generate_from_bundle_equals_infer_from_path(
    tts: Any,
    clips: dict[str, Any],
    bundles: dict[str, dict[str, np.ndarray]],
    text: str,
    options: dict[str, Any],
    emotion_from_b: bool,
) -> None:
    infer_options, generate_options = dict(options), dict(options)
    if emotion_from_b:  # an emotion reference clip upstream; its w2v-BERT embedding here
        infer_options["emo_audio_prompt"] = str(clips["b"][0])
        generate_options["emo_cond_emb"] = bundles["b"]["spk_cond_emb"]
    ref_rate, ref = tts.infer(spk_audio_prompt=str(clips["a"][0]), text=text, output_path=None, **infer_options)
    rate, audio = generate(tts, text, bundles["a"], **generate_options)
    assert (rate, ref.dtype, ref.shape[1]) == (ref_rate, np.int16, 1)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.shape[0] == ref.shape[0]
    assert np.abs(audio).max() <= 1.0
    assert np.std(ref) > 500  # not silence: the comparison below means something
    # upstream truncates PCM-scale floats to int16; ours are the same floats / 32767
    assert np.abs(audio * 32767.0 - ref[:, 0]).max() <= 1.0


def test_segments_concatenate_to_generate(tts: Any, bundles: dict[str, dict[str, np.ndarray]]) -> None:
    options = {"max_text_tokens_per_segment": 40}
    chunks = list(generate_segments(tts, LONG_TEXT, bundles["a"], **options))
    assert len(chunks) == 5  # three segments, two silences
    assert not np.any(chunks[1]) and chunks[1].shape[0] == int(22_050 * 0.2)
    assert np.array_equal(np.concatenate(chunks), generate(tts, LONG_TEXT, bundles["a"], **options)[1])


def test_infer_writes_a_file_like_upstream(tts: Any, clips: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out" / "gen.wav"
    assert tts.infer(spk_audio_prompt=str(clips["a"][0]), text=TEXT, output_path=str(out)) == str(out)
    written, rate = sf.read(out, dtype="int16")
    assert rate == 22_050 and written.shape[0] == generate(tts, TEXT, {**tts_bundle(tts)})[1].shape[0]


def tts_bundle(tts: Any) -> dict[str, Any]:
    """The stand-in's own cache after infer(), as a bundle (same names as the encoder's)."""
    return {
        "spk_cond_emb": tts.cache_spk_cond,
        "style": tts.cache_s2mel_style,
        "prompt_condition": tts.cache_s2mel_prompt,
        "ref_mel": tts.cache_mel,
    }


def test_encoder_matches_the_upstream_cache(
    tts: Any, clips: dict[str, Any], bundles: dict[str, dict[str, np.ndarray]]
) -> None:
    tts.infer(spk_audio_prompt=str(clips["b"][0]), text=TEXT, output_path=None)
    for name, value in tts_bundle(tts).items():
        assert np.array_equal(bundles["b"][name], value.detach().numpy()), name


def test_generate_leaves_the_speaker_cache_alone(
    tts: Any, clips: dict[str, Any], bundles: dict[str, dict[str, np.ndarray]]
) -> None:
    first = tts.infer(spk_audio_prompt=str(clips["a"][0]), text=TEXT, output_path=None)[1]
    cached = dict(vars(tts))
    generate(tts, TEXT, bundles["b"])
    assert all(vars(tts)[key] is value for key, value in cached.items() if key.startswith("cache_"))
    assert np.array_equal(tts.infer(spk_audio_prompt=str(clips["a"][0]), text=TEXT, output_path=None)[1], first)


def test_voices_differ(tts: Any, bundles: dict[str, dict[str, np.ndarray]]) -> None:
    a = generate(tts, TEXT, bundles["a"])[1]
    b = generate(tts, TEXT, bundles["b"])[1]
    assert a.shape == b.shape  # the stand-in's length depends on the text only
    assert np.abs(a - b).mean() > 0.01


def test_float16_bundle_still_speaks(tts: Any, bundles: dict[str, dict[str, np.ndarray]]) -> None:
    exact = generate(tts, TEXT, bundles["a"])[1]
    halved = {key: value.astype(np.float16).astype(np.float32) for key, value in bundles["a"].items()}
    rounded = generate(tts, TEXT, halved)[1]
    assert rounded.shape == exact.shape
    assert np.isfinite(rounded).all() and np.abs(rounded).max() <= 1.0


def test_emotion_options_run(tts: Any, bundles: dict[str, dict[str, np.ndarray]]) -> None:
    plain = generate(tts, TEXT, bundles["a"])[1]
    with_vector = generate(tts, TEXT, bundles["a"], emo_vector=[0, 0, 0.6, 0, 0, 0, 0, 0])[1]
    borrowed = generate(tts, TEXT, bundles["a"], emo_cond_emb=bundles["b"]["spk_cond_emb"], emo_alpha=0.7)[1]
    from_text = generate(tts, TEXT, bundles["a"], use_emo_text=True, emo_text="so sad")[1]
    assert plain.shape == with_vector.shape == borrowed.shape == from_text.shape
    assert not np.array_equal(plain, with_vector) and not np.array_equal(plain, borrowed)


def test_bad_bundle_is_refused(tts: Any, bundles: dict[str, dict[str, np.ndarray]]) -> None:
    with pytest.raises(ValueError, match="lacks style"):
        generate(tts, TEXT, {k: v for k, v in bundles["a"].items() if k != "style"})
    mismatched = {**bundles["a"], "ref_mel": bundles["b"]["ref_mel"]}
    with pytest.raises(ValueError, match="frames"):
        generate(tts, TEXT, mismatched)


def test_two_voices_from_eight_threads_do_not_mix(tts: Any, bundles: dict[str, dict[str, np.ndarray]]) -> None:
    texts = {"a": TEXT, "b": LONG_TEXT}
    sequential = {name: generate(tts, texts[name], bundles[name])[1] for name in texts}
    jobs = ["a", "b"] * 12
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda name: (name, generate(tts, texts[name], bundles[name])[1]), jobs))
    for name, audio in results:
        assert np.array_equal(audio, sequential[name]), name
