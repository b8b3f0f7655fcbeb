"""Registered voices: a name bound to reference audio, stored as small JSON metadata.

JSON is fine here (ids, hashes, timestamps: no floats that need exactness); the
conditioning itself is always a binary record.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from services.common.errors import InvalidInput

VOICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def validate_voice_id(voice_id: str, field_name: str = "voice_id") -> None:
    if not VOICE_ID.match(voice_id):
        raise InvalidInput(
            f"voice_id {voice_id[:80]!r} is invalid: use 1-64 characters from A-Z a-z 0-9 . _ -",
            field=field_name,
        )


@dataclass
class Voice:
    """A registered voice: a name bound to one reference clip, and the cache entries it pins."""

    voice_id: str
    audio_sha256: str
    duration_s: float
    created_unix_ms: int
    #: encoder name -> the pinned cache key of this voice's conditioning
    pinned: dict[str, str] = field(default_factory=dict)
    #: keys.content_digest of the clip (its cache keys); "" for a voice registered before
    #: keys used it, filled in from the stored audio the first time it is used.
    content_digest: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Voice:
        return cls(**json.loads(raw))
