"""Text validation and sentence splitting: the unit of streaming is one sentence."""

from __future__ import annotations

import re
import unicodedata

from services.common.errors import InvalidInput

# A sentence ends at . ! ? followed by space, after the CJK full stop, exclamation or
# question mark (U+3002, U+FF01, U+FF1F; no space follows them), or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+|(?<=[\u3002\uff01\uff1f])|\n+")


def normalise(text: str, max_chars: int) -> str:
    if not text or not text.strip():
        raise InvalidInput("text is empty", field="text")
    if len(text) > max_chars:
        raise InvalidInput(f"text is {len(text):,} characters; the limit is {max_chars:,}", field="text")
    cleaned = "".join(ch if unicodedata.category(ch)[0] != "C" or ch == "\n" else " " for ch in text)
    return unicodedata.normalize("NFC", cleaned).strip()


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]
