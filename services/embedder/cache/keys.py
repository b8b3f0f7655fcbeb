"""Redis key layout; the only module that knows how keys are spelled.

Conditioning keys are content-addressed: a hash of the exact audio bytes plus the encoder
name and its weights digest, so a model upgrade changes every key and can never serve
vectors from the old weights. An ECAPA key reads like

    voxcache:cond:ecapa:0575cb64:{Xq3v0Jm1tG2n9bS8kE4wQA}

(prefix, encoder, the first 8 hex characters of the weights digest, 128 bits of the audio's
BLAKE3 in base64url): short enough that the key is a small part of an entry's Redis memory,
readable enough to tell encoders and weight versions apart in `redis-cli --scan`.

The braces are a Redis Cluster hash tag: only the clip's digest picks the hash slot, so every
entry of one clip (each encoder, each weight version, and any per-clip key spelled with
`clip_tag`) lives in one slot, where a multi-key command, a transaction or a script over
them stays valid. Different clips spread over all slots. Every other key here is used alone
(no command names two keys), so it needs no tag. On a single server the braces are just two
characters of the name; they changed the spelling once (older entries became misses).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import numpy as np
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


def content_digest(audio: bytes | memoryview) -> str:
    """The cache's identity of a clip: BLAKE3 (a cryptographic hash, ~3x faster than SHA-256
    on these CPUs; the hash is most of what an upload hit costs beyond gRPC itself)."""
    return base64.urlsafe_b64encode(blake3(audio).digest(CONTENT_BYTES)).rstrip(b"=").decode()


def scope(prefix: str, tenant: str) -> str:
    """The prefix of one tenant's keys; the anonymous tenant ("") keeps the single-tenant layout.

    Tenant ids cannot contain `:` (services/common/auth.py), so no tenant's keys can be
    spelled to fall inside another's scope.
    """
    return f"{prefix}:t:{tenant}" if tenant else prefix


def clip_tag(audio_digest: str) -> str:
    """The hash tag of one clip's keys: in Redis Cluster only this part picks the slot."""
    return f"{{{audio_digest}}}"


def conditioning(prefix: str, encoder: str, weights_digest: str, audio_digest: str) -> ConditioningKey:
    redis_key = f"{prefix}:cond:{encoder}:{weights_digest[:DIGEST_CHARS]}:{clip_tag(audio_digest)}"
    return ConditioningKey(redis_key, encoder, weights_digest)


def pcm_digest(sample_rate: int, samples: np.ndarray) -> str:
    """The cache's identity of a clip's sound rather than its bytes: BLAKE3 over the sample rate
    and the canonical PCM (audio.read: mono float32 at the source rate, full scale ±1), as
    little-endian bytes. The same samples in WAV or FLAC, with extra chunks, or as 16-bit v and
    24-bit v<<8 PCM hash the same; the encoder's input is a function of exactly these, so two
    clips with one PCM digest always get the same conditioning."""
    hasher = blake3(b"pcm1" + sample_rate.to_bytes(4, "little"))
    hasher.update(np.ascontiguousarray(samples, dtype="<f4").view(np.uint8))
    return base64.urlsafe_b64encode(hasher.digest(CONTENT_BYTES)).rstrip(b"=").decode()


def pcm(key: ConditioningKey, pcm_digest: str) -> str:
    """The PCM index of an entry: points from a clip's canonical PCM to the entry that holds it.

    In the entry's own scope (tenant), so it never points across tenants; the encoder and its
    weights digest are hashed into the name with the PCM digest rather than spelled out, so
    the key stays 35 characters (`voxcache:pcm:<22 base64url>`): one is kept per entry.
    """
    scope = key.redis_key.rpartition(":cond:")[0]
    named = blake3(f"{key.encoder}:{key.weights_digest}:{pcm_digest}".encode()).digest(CONTENT_BYTES)
    return f"{scope}:pcm:{base64.urlsafe_b64encode(named).rstrip(b'=').decode()}"


def content_of(key: ConditioningKey) -> str:
    """The content digest a conditioning key was spelled from (its last component)."""
    return key.redis_key.rpartition(":")[2].strip("{}")


def with_content(key: ConditioningKey, audio_digest: str) -> ConditioningKey:
    """The key of another clip's entry beside `key`: same scope, encoder and weights digest."""
    return ConditioningKey(
        f"{key.redis_key.rpartition(':')[0]}:{clip_tag(audio_digest)}", key.encoder, key.weights_digest
    )


def hot(prefix: str) -> str:
    """Sorted set of conditioning keys (every tenant's, under this prefix) by how often they were
    asked for: what a restarted worker loads into its L1 first (cache/hotness.py)."""
    return f"{prefix}:hot"


def encoder_of(redis_key: str) -> tuple[str, str] | None:
    """(encoder name, 8 hex of its weights digest) of a conditioning key; None for any other key."""
    scope, marker, rest = redis_key.rpartition(":cond:")
    parts = rest.split(":")
    if not marker or not scope or len(parts) != 3:
        return None
    return parts[0], parts[1]


def voices(prefix: str) -> str:
    """Hash of voice_id -> voice (JSON metadata, no floats)."""
    return f"{prefix}:voices"


def voice_audio(prefix: str, audio_digest: str) -> str:
    """Reference audio of a registered voice, kept so any encoder can re-derive it."""
    return f"{prefix}:audio:{audio_digest}"


def voice_vectors(prefix: str, encoder: str, weights_digest: str) -> str:
    """Hash of voice_id -> the voice's searched vector (raw little-endian float32, unit length),
    one per encoder and weights version, so an upgrade never compares vectors of two models."""
    return f"{prefix}:vectors:{encoder}:{weights_digest[:DIGEST_CHARS]}"


def voices_version(prefix: str) -> str:
    """Counter bumped on every change to the tenant's voices: a worker whose copy is older reloads."""
    return f"{prefix}:voices:version"


def voice_changes(prefix: str) -> str:
    """Pub/sub channel (under the cache prefix, for every tenant) on which voice changes are announced."""
    return f"{prefix}:voices:changed"


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
