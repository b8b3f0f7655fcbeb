"""Redis key layout; the only module that knows how keys are spelled.

Conditioning keys are content-addressed: a hash of the exact audio bytes plus the encoder
name and its weights digest, so a model upgrade changes every key and can never serve
vectors from the old weights. An ECAPA key reads like

    voxcache:cond:ecapa:0575cb64:Xq3v0Jm1tG2n9bS8kE4wQA

(prefix, encoder, the first 8 hex characters of the weights digest, 128 bits of the audio's
BLAKE3 in base64url): short enough that the key is a small part of an entry's Redis memory,
readable enough to tell encoders and weight versions apart in `redis-cli --scan`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from blake3 import blake3

#: Hex characters of the weights digest kept in the key (32 bits: weight sets of one encoder
#: are a handful chosen by the operator, not an adversary's search space).
DIGEST_CHARS = 8
#: Bytes of the content hash kept: 128 bits, so finding two clips with one key takes ~2^64
#: work even for a caller who controls both (and keys are per tenant unless shared).
CONTENT_BYTES = 16


@dataclass(frozen=True)
class ConditioningKey:
    """A cache entry's key plus what it was derived from, so a value read back can be labelled."""

    redis_key: str
    encoder: str
    weights_digest: str


def audio_sha256(audio: bytes) -> str:
    """The registry's identity of a clip (Voice.audio_sha256 on the wire, the audio's key)."""
    return hashlib.sha256(audio).hexdigest()


def content_digest(audio: bytes) -> str:
    """The cache's identity of a clip: BLAKE3 (a cryptographic hash, ~3x faster than SHA-256
    on these CPUs; the hash is most of what an upload hit costs beyond gRPC itself)."""
    return base64.urlsafe_b64encode(blake3(audio).digest(CONTENT_BYTES)).rstrip(b"=").decode()


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


def lease(entry_key: str) -> str:
    """The cross-process single-flight lease of one entry (cache/lease.py): the entry's own key
    plus a suffix, so whatever decides an entry's cluster slot decides its lease's too."""
    return f"{entry_key}:lease"


def lease_channel(prefix: str) -> str:
    """The pub/sub channel on which a lease holder announces the entry key it has filled."""
    return f"{prefix}:lease-done"


def workers(prefix: str) -> str:
    """Hash of worker id -> that worker's counters as JSON (services/embedder/workers.py)."""
    return f"{prefix}:workers"
