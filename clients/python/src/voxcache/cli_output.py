"""What the `voxcache` command prints: numbers for people, match words, a per-sentence progress line.

Kept apart from the argument handling so each rule (how a ratio, a duration or a
size reads; when a cosine counts as weak) is one small function with one test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TextIO

#: Below this ECAPA cosine the voice spoken sounds clearly unlike the reference.
WEAK_MATCH_BELOW = 0.5
#: Only kokoro reports a cosine (it picks the nearest bundled voice); a cloning backend reports 0.
KOKORO_NOTE = "kokoro picks a bundled voice, it does not clone"

_SIZE_UNITS = ("KiB", "MiB", "GiB", "TiB")


def count(value: int) -> str:
    """1234567 -> '1,234,567'."""
    return f"{value:,}"


def percent(ratio: float) -> str:
    """0.3902439 -> '39.0 %'."""
    return f"{ratio * 100:.1f} %"


def milliseconds(ms: float) -> str:
    """A duration as precise as a person needs: '0.59 ms', '12.3 ms', '245 ms', '1.73 s', '12.4 s', '2 min 05 s'."""
    if ms < 10:
        return f"{ms:.2f} ms" if ms < 1 else f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def seconds(value: float) -> str:
    """Seconds, read like milliseconds()."""
    return milliseconds(value * 1000)


def size(n_bytes: int) -> str:
    """Bytes with a binary unit: '793 B', '1.2 KiB', '45.6 MiB'."""
    if n_bytes < 1024:
        return f"{n_bytes} B"
    value = float(n_bytes)
    for unit in _SIZE_UNITS:
        value /= 1024
        if value < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def write_back(pending: int, n_bytes: int, written: int, dropped: int) -> str:
    """The Redis write-back queue in one line: '3 waiting (2.4 KiB), 120 written, 0 dropped (queue full)'.

    Waiting entries were computed while Redis was down; a growing count with Redis up is worth a look.
    """
    waiting = f"{count(pending)} waiting ({size(n_bytes)})"
    return f"{waiting}, {count(written)} written, {count(dropped)} dropped (queue full)"


def timings(values: Mapping[str, float]) -> str:
    """{'embed': 122.4, 'synthesis': 1732.0} -> 'embed 122 ms, synthesis 1.73 s'."""
    return ", ".join(f"{name} {milliseconds(ms)}" for name, ms in values.items())


def match(similarity: float) -> str | None:
    """Words for the cosine the Synthesizer reports; None when it reports none (0: the backend cloned).

    The README quotes these strings; tests/clients/test_cli_units.py keeps the two in step.
    """
    if similarity == 0:
        return None
    strength = "weak match" if similarity < WEAK_MATCH_BELOW else "good match"
    return f"cosine {similarity:.2f}, {strength}: {KOKORO_NOTE}"


def voice_summary(voice: str, similarity: float) -> str:
    """'voice jf_alpha (cosine 0.22, weak match: kokoro picks a bundled voice, it does not clone)'."""
    words = match(similarity)
    return f"voice {voice}" + (f" ({words})" if words else "")


class SentenceProgress:
    """One status line on a terminal: sentences done, seconds of audio, seconds elapsed.

    The total number of sentences is not known before the stream ends, so there is no
    bar, only what has been done. It writes nothing unless `enabled` (a TTY, not -q):
    a log file or a pipe gets only the final summary.
    """

    def __init__(self, stream: TextIO, enabled: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.enabled = enabled
        self.clock = clock
        self.started = clock()
        self.sentences = 0
        self.audio_s = 0.0
        self._width = 0
        self._show("synthesizing: waiting for the first sentence")

    def sentence_done(self, pcm_bytes: int, sample_rate: int) -> None:
        """Count one finished sentence of 16-bit mono PCM."""
        self.sentences += 1
        self.audio_s += pcm_bytes / 2 / sample_rate if sample_rate else 0.0
        plural = "" if self.sentences == 1 else "s"
        self._show(
            f"synthesizing: {self.sentences} sentence{plural} done, {self.audio_s:.1f} s of audio, "
            f"{self.clock() - self.started:.0f} s elapsed"
        )

    def _show(self, text: str) -> None:
        if self.enabled:
            self.stream.write("\r" + text.ljust(self._width))
            self.stream.flush()
            self._width = len(text)

    def close(self) -> None:
        """Clear the line, so the summary that follows starts on a clean one."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def clone_quality(similarity: float | None, error: str) -> str:
    """`say --score`'s line: the cosine, or why there is none (a score never fails `say`)."""
    if similarity is None:
        return f"clone quality: {error or 'not scored'}"
    return f"clone quality: speaker similarity {similarity:.3f} (ECAPA cosine to the reference; 1 = same voice)"
