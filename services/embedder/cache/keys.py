"""Redis key layout; the only module that knows how keys are spelled.

Conditioning keys are content-addressed: sha256 of the exact audio bytes plus
the encoder name and its weights digest, so a model upgrade changes every key
and can never serve vectors from the old weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: Hex characters of the weights digest kept in the key (64 bits: collisions
#: between two weight sets of one encoder are not a practical concern).
DIGEST_CHARS = 16


@dataclass(frozen=True)
class ConditioningKey:
    """A cache entry's key plus what it was derived from, so a value read back can be labelled."""

    redis_key: str
    encoder: str
    weights_digest: str


def audio_sha256(audio: bytes) -> str:
    return hashlib.sha256(audio).hexdigest()


def scope(prefix: str, tenant: str) -> str:
    """The prefix of one tenant's keys; the anonymous tenant ("") keeps the single-tenant layout.

    Tenant ids cannot contain `:` (services/common/auth.py), so no tenant's keys can be
    spelled to fall inside another's scope.
    """
    return f"{prefix}:t:{tenant}" if tenant else prefix


def conditioning(prefix: str, encoder: str, weights_digest: str, audio_digest: str) -> ConditioningKey:
    redis_key = f"{prefix}:cond:{encoder}:{weights_digest[:DIGEST_CHARS]}:{audio_digest}"
    return ConditioningKey(redis_key, encoder, weights_digest)


def voices(prefix: str) -> str:
    """Hash of voice_id -> voice (JSON metadata, no floats)."""
    return f"{prefix}:voices"


def voice_audio(prefix: str, audio_digest: str) -> str:
    """Reference audio of a registered voice, kept so any encoder can re-derive it."""
    return f"{prefix}:audio:{audio_digest}"


def probe(prefix: str) -> str:
    """Written and deleted once at start, to prove the ACL lets this user write under `prefix`."""
    return f"{prefix}:probe"
