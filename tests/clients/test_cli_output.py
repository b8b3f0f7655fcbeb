"""What `voxcache` prints (voxcache/cli_output.py): numbers for people, match words, sentence progress."""

from __future__ import annotations

import io
from pathlib import Path

from voxcache import cli_output as out


def test_numbers_read_as_people_write_them() -> None:
    assert out.percent(0.3902439024390244) == "39.0 %"
    assert [out.milliseconds(ms) for ms in (0.587, 2.34, 245.4, 1732.0, 12_400.0, 125_000.0)] == [
        "0.59 ms",
        "2.3 ms",
        "245 ms",
        "1.73 s",
        "12.4 s",
        "2 min 05 s",
    ]
    assert [out.size(n) for n in (793, 1234, 47_800_000, 268_435_456)] == ["793 B", "1.2 KiB", "45.6 MiB", "256.0 MiB"]
    assert out.count(1234567) == "1,234,567"
    assert out.timings({"embed": 122.4, "synthesis": 1732.0}) == "embed 122 ms, synthesis 1.73 s"


def test_similarity_has_a_word() -> None:
    assert out.match(0.219) == "cosine 0.22, weak match: kokoro picks a bundled voice, it does not clone"
    assert out.match(0.49).startswith("cosine 0.49, weak match")  # type: ignore[union-attr]
    assert out.match(0.5).startswith("cosine 0.50, good match")  # type: ignore[union-attr]
    assert out.match(0.0) is None  # a cloning backend reports no cosine
    assert out.voice_summary("cloned", 0.0) == "voice cloned"


def test_sentence_progress_counts_sentences_and_audio() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    ticks = iter([0.0, 4.2, 9.9])
    screen = Terminal()
    progress = out.SentenceProgress(screen, enabled=True, clock=lambda: next(ticks))
    progress.sentence_done(24_000 * 2 * 3, 24_000)  # 3 s of 16-bit PCM
    progress.sentence_done(24_000 * 2, 24_000)
    progress.close()
    text = screen.getvalue()
    assert "1 sentence done, 3.0 s of audio, 4 s elapsed" in text
    assert "2 sentences done, 4.0 s of audio, 10 s elapsed" in text
    assert text.endswith("\r") and "\n" not in text  # one line, cleared for the summary
    quiet = io.StringIO()
    silent = out.SentenceProgress(quiet, enabled=False)
    silent.sentence_done(48_000, 24_000)
    silent.close()
    assert quiet.getvalue() == ""


def test_readme_quotes_what_say_prints() -> None:
    """The README promised a word for a weak match the CLI never printed; now it quotes the CLI."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = out.voice_summary("jf_alpha", 0.219)
    assert line == "voice jf_alpha (cosine 0.22, weak match: kokoro picks a bundled voice, it does not clone)"
    assert f"`{line}`" in readme  # the kokoro note at the top
    assert f"wrote hello.wav: 1.70 s of speech at 24 kHz, {line};" in readme  # the `say` example
