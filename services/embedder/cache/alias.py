"""The small value that points one key at another clip's entry; nothing else knows its bytes.

Two kinds of key hold it (cache/reencode.py): a clip's PCM index (`keys.pcm`), pointing at
the entry computed from those samples, and the conditioning key of a re-encoded copy of a
clip (same samples, other bytes), pointing at the same entry instead of holding a second
copy of its tensors. Layout, 28 bytes:

    offset  size  field
    0       2     magic  b"VA"
    2       16    the target's content digest (keys.content_of, base64url-decoded)
    18      10    tag over utf8(key) || the 18 bytes before it: HMAC-SHA256 with the signing
                  secret of cache_hmac_keys, or plain SHA-256 when none is set, cut to 80 bits

An alias is signed like a record for the same reason: with keys configured, nobody who can
merely write to Redis can point one clip's key at another clip's conditioning (an 80-bit tag
means ~2^80 forged values sent through the Embedder per success). The tag covers the alias's
own key, so an alias copied under another key is rejected. Unlike a record it names no key id:
every configured secret is tried (a rotation lists two or three), which keeps the value at 28
bytes, the most Redis stores inline with its object header: every extracted entry carries a
PCM index, so its size is paid once per entry (120 B of `MEMORY USAGE` with its key).
"""

from __future__ import annotations

import base64
import hmac

from services.embedder.cache.record import Keyring, RecordError

MAGIC = b"VA"
_DIGEST_BYTES = 16
_TAG_BYTES = 10
SIZE = len(MAGIC) + _DIGEST_BYTES + _TAG_BYTES


def is_alias(value: bytes) -> bool:
    return len(value) == SIZE and value[:2] == MAGIC


def encode(key: str, target_digest: str, keyring: Keyring) -> bytes:
    body = MAGIC + _raw(target_digest)
    return body + keyring.tag(keyring.signing_id, key, body)[:_TAG_BYTES]


def decode(key: str, value: bytes, keyring: Keyring) -> str:
    """The target's content digest, once the tag checks out; RecordError otherwise."""
    if not is_alias(value):
        raise RecordError(f"not an alias ({len(value)} bytes)")
    body, tag = value[:-_TAG_BYTES], value[-_TAG_BYTES:]
    # With keys configured only they verify (an unsigned alias is rejected); without, the checksum.
    key_ids = list(keyring.secrets) or [""]
    if not any(hmac.compare_digest(keyring.tag(k, key, body)[:_TAG_BYTES], tag) for k in key_ids):
        raise RecordError("alias signature mismatch" if keyring.secrets else "alias checksum mismatch")
    return base64.urlsafe_b64encode(body[len(MAGIC) :]).rstrip(b"=").decode()


def _raw(digest: str) -> bytes:
    raw = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
    if len(raw) != _DIGEST_BYTES:
        raise ValueError(f"content digest {digest!r} is not {_DIGEST_BYTES} bytes")
    return raw
