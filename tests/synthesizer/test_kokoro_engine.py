"""The real Kokoro-82M weights: verified at load, phonemize English, and speak it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from services.common.paths import REPO_ROOT
from services.common.weights import WeightsError
from services.synthesizer.backends.kokoro_engine import MANIFEST, MODEL_FILE, VOCAB_FILE, KokoroEngine
from tests.weights_checks import assert_digest_covers_every_file

MODEL_DIR = REPO_ROOT / "models" / "kokoro"
SENTENCE = "Hello world, this is a test."
PARAGRAPH = " ".join(
    [
        "The old lighthouse keeper climbed the winding stairs every evening, lighting the great lamp",
        "so that ships at sea could find their way home through the fog. Nobody in the village remembered",
        "a night when the light had failed; storms came and went, and the keeper grew old, but the lamp",
        "burned on. Children dared each other to knock on his door and run, and sailors raised their",
        "glasses to him in the harbour tavern without ever having seen his face. When at last he retired,",
        "a machine took his place, and it never missed a night either, though nobody raised a glass to it.",
    ]
    * 2
)


@pytest.fixture(scope="module")
def engine() -> KokoroEngine:
    return KokoroEngine(MODEL_DIR, threads=2)


@pytest.fixture(scope="module")
def vocab() -> set[str]:
    return set(json.loads((MODEL_DIR / VOCAB_FILE).read_text(encoding="utf-8"))["vocab"])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def test_phonemize_english_uses_only_vocabulary_symbols(engine: KokoroEngine, vocab: set[str]) -> None:
    phonemes = engine.phonemize(SENTENCE, "en")
    assert phonemes.strip()
    assert set(phonemes) <= vocab
    # misaki's folded US symbols (O = oʊ) and the clause punctuation espeak-ng would drop
    assert phonemes == "həlˈO wˈɜɹld, ðɪs ɪz ə tˈɛst."


def test_phonemize_maps_espeak_symbols_outside_the_vocabulary(engine: KokoroEngine, vocab: set[str]) -> None:
    text = "Judge the church boy; out by the bay! Bird, butter, button, little nation?"
    phonemes = engine.phonemize(text, "en")
    assert set(phonemes) <= vocab
    for folded in ("ʤ", "ʧ", "Y", "W", "I", "A", "ɜɹ", "tᵊn", "ᵊl", ";", "!", "?"):
        assert folded in phonemes


def test_tokenize(engine: KokoroEngine) -> None:
    phonemes = engine.phonemize(SENTENCE, "en")
    tokens = engine.tokenize(phonemes)
    assert len(tokens) == len(phonemes)
    assert all(isinstance(t, int) and t > 0 for t in tokens)
    with pytest.raises(ValueError, match="outside Kokoro's vocabulary"):
        engine.tokenize("hello\u0361")


def test_phonemize_keeps_every_word_of_a_long_clause(engine: KokoroEngine) -> None:
    """espeak-ng splits long clauses and cuts long lines mid-word; no word may be lost or split."""
    phonemes = engine.phonemize("Start here. " + " ".join(["word"] * 400) + ", end.", "en")
    assert phonemes.split() == ["stˈɑɹt", "hˈɪɹ.", *["wˈɜɹd"] * 399, "wˈɜɹd,", "ˈɛnd."]


def test_text_is_never_read_as_espeak_options(engine: KokoroEngine) -> None:
    assert engine.phonemize("-v de --help, hello.\x00 Bye", "en") == "vˈi də hˈɛlp, həlˈO. bˈI"


@pytest.mark.parametrize("text", ["...!!!", "   ", "", "— , ."])
def test_text_without_words_has_no_phonemes(engine: KokoroEngine, text: str) -> None:
    assert engine.phonemize(text, "en") == ""


@pytest.mark.parametrize("language", ["fr", "ja", "EN", ""])
def test_unsupported_language_is_refused(engine: KokoroEngine, language: str) -> None:
    with pytest.raises(ValueError, match="not supported"):
        engine.phonemize(SENTENCE, language)


def test_every_voice_speaks(engine: KokoroEngine) -> None:
    phonemes = engine.phonemize(SENTENCE, "en")
    assert engine.voice_names == sorted(engine.voice_names) and len(engine.voice_names) == 5
    for name in engine.voice_names:
        pack = engine.voice_pack(name)
        assert pack.shape == (510, 1, 256) and pack.dtype == np.float32
        audio = engine.synthesize(phonemes, pack)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert engine.sample_rate == 24_000
        assert 1.0 < len(audio) / engine.sample_rate < 5.0, name
        assert np.all(np.isfinite(audio)), name
        assert rms(audio) > 0.02, name


def test_blended_style_is_accepted(engine: KokoroEngine) -> None:
    blend = np.mean([engine.voice_pack(name) for name in engine.voice_names], axis=0)
    audio = engine.synthesize(engine.phonemize(SENTENCE, "en"), blend)
    assert rms(audio) > 0.02
    with pytest.raises(ValueError, match="style pack"):
        engine.synthesize("hɛlO", np.zeros((510, 128), np.float32))


def test_speed_changes_duration(engine: KokoroEngine) -> None:
    phonemes = engine.phonemize(SENTENCE, "en")
    pack = engine.voice_pack("jf_alpha")
    fast = engine.synthesize(phonemes, pack, speed=2.0)
    slow = engine.synthesize(phonemes, pack, speed=0.5)
    assert len(fast) * 2 < len(slow)
    with pytest.raises(ValueError, match="speed"):
        engine.synthesize(phonemes, pack, speed=0.0)


def test_unknown_voice_and_bad_pieces_are_refused(engine: KokoroEngine) -> None:
    with pytest.raises(ValueError, match="unknown Kokoro voice"):
        engine.voice_pack("af_heart")
    pack = engine.voice_pack("jm_kumo")
    with pytest.raises(ValueError, match="empty"):
        engine.synthesize("", pack)
    with pytest.raises(ValueError, match="split_phonemes"):
        engine.synthesize("ə" * (engine.max_tokens + 1), pack)


def test_split_phonemes_fits_the_model_and_keeps_every_phoneme(engine: KokoroEngine) -> None:
    phonemes = engine.phonemize(PARAGRAPH, "en")
    assert len(phonemes) > 2 * engine.max_tokens
    pieces = engine.split_phonemes(phonemes)
    assert len(pieces) >= 3
    assert all(0 < len(engine.tokenize(piece)) <= engine.max_tokens for piece in pieces)
    assert " ".join(pieces) == phonemes
    # cuts fall at the end of a sentence when there is one within reach
    assert all(piece[-1] in ".!?…" for piece in pieces)
    assert engine.split_phonemes("") == []
    assert engine.split_phonemes(SENTENCE) == [SENTENCE]


def test_split_phonemes_cuts_an_overlong_word_hard(engine: KokoroEngine) -> None:
    word = "ə" * (engine.max_tokens * 2 + 7)
    pieces = engine.split_phonemes(word)
    assert [len(p) for p in pieces] == [engine.max_tokens, engine.max_tokens, 7]


def test_longest_piece_synthesizes(engine: KokoroEngine) -> None:
    pieces = engine.split_phonemes(engine.phonemize(PARAGRAPH, "en"))
    longest = max(pieces, key=len)
    audio = engine.synthesize(longest, engine.voice_pack("jm_kumo"))
    assert len(audio) / engine.sample_rate > 10.0 and rms(audio) > 0.02


def test_weights_digest_covers_every_file() -> None:
    """Every model file in the installed directory is pinned, and each one moves the digest."""
    assert_digest_covers_every_file(MANIFEST, MODEL_DIR)
    assert KokoroEngine.weights_digest == MANIFEST.digest


def test_tampered_or_missing_weights_refuse_to_load(tmp_path: Path) -> None:
    for spec in MANIFEST.files:
        if spec.name != MODEL_FILE:
            shutil.copy(MODEL_DIR / spec.name, tmp_path / spec.name)
    with pytest.raises(WeightsError, match=rf"{MODEL_FILE}: missing"):
        KokoroEngine(tmp_path)
    (tmp_path / MODEL_FILE).symlink_to(MODEL_DIR / MODEL_FILE)
    vocab = json.loads((tmp_path / VOCAB_FILE).read_text(encoding="utf-8"))
    vocab["vocab"]["ɐ"], vocab["vocab"]["ə"] = vocab["vocab"]["ə"], vocab["vocab"]["ɐ"]
    (tmp_path / VOCAB_FILE).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(WeightsError, match=r"vocab\.json: sha256"):
        KokoroEngine(tmp_path)
