"""The small value that points one key at another clip's entry; nothing else knows its bytes.

Two kinds of key hold it (cache/reencode.py): a clip's PCM index (`keys.pcm`), pointing at
the entry computed from those samples, and the conditioning key of a re-encoded copy of a
clip (same samples, other bytes), pointing at the same entry instead of holding a second
copy of its tensors. Layout:

    offset  size  field
    0       4     magic  b"VXCA"
    4       1     key id length K (0 = unsigned)
    5       K     key id, ASCII (as in record.py)
    5+K     16    the target's content digest (keys.content_of, base64url-decoded)
    end-16  16    tag over utf8(key) || every byte before the tag: HMAC-SHA256 with that key
                  id's secret, or plain SHA-256 when K = 0, truncated to 128 bits

An alias is signed like a record for the same reason: with keys configured, nobody who can
merely write to Redis can point one clip's key at another clip's conditioning. The tag
covers the alias's own key, so an alias copied under another key is rejected. 37 bytes
unsigned; a 128-bit tag keeps forgery at 2^128 work while keeping the value small, since
every entry's PCM index costs Redis memory.
"""

from __future__ import annotations

import base64
import hmac

from services.embedder.cache.record import Keyring, RecordError

MAGIC = b"VXCA"
_DIGEST_BYTES = 16
_TAG_BYTES = 16


def is_alias(value: bytes) -> bool:
    return value[:4] == MAGIC


def encode(key: str, target_digest: str, keyring: Keyring) -> bytes:
    key_id = keyring.signing_id.encode()
    body = MAGIC + bytes([len(key_id)]) + key_id + _raw(target_digest)
    return body + keyring.tag(keyring.signing_id, key, body)[:_TAG_BYTES]


def decode(key: str, value: bytes, keyring: Keyring) -> str:
    """The target's content digest, once the tag checks out; RecordError otherwise."""
    if not is_alias(value) or len(value) < 5 + _DIGEST_BYTES + _TAG_BYTES:
        raise RecordError(f"not an alias ({len(value)} bytes)")
    id_len = value[4]
    if len(value) != 5 + id_len + _DIGEST_BYTES + _TAG_BYTES:
        raise RecordError(f"alias of {len(value)} bytes has the wrong length")
    key_id = value[5 : 5 + id_len].decode("ascii", "replace")
    if key_id and key_id not in keyring.secrets:
        raise RecordError(f"alias signed with key id {key_id!r}, which this Embedder does not have")
    if not key_id and keyring.secrets:
        raise RecordError("unsigned alias, but cache_hmac_keys is set: only signed values are accepted")
    body = value[:-_TAG_BYTES]
    if not hmac.compare_digest(keyring.tag(key_id, key, body)[:_TAG_BYTES], value[-_TAG_BYTES:]):
        raise RecordError("alias signature mismatch" if key_id else "alias checksum mismatch")
    return base64.urlsafe_b64encode(body[-_DIGEST_BYTES:]).rstrip(b"=").decode()


def _raw(digest: str) -> bytes:
    raw = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
    if len(raw) != _DIGEST_BYTES:
        raise ValueError(f"content digest {digest!r} is not {_DIGEST_BYTES} bytes")
    return raw
