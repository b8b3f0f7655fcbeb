"""The binary value stored in Redis for one Conditioning; nothing else knows its bytes.

Layout (all integers little-endian), version 3:

    offset  size  field
    0       4     magic  b"VXCR"
    4       1     version (3; version 2 is the same without dtype 3)
    5       1     flags (0; reserved)
    6       1     key id length K (0 = unsigned)
    7       K     key id, ASCII (the `id` of one `id:secret` pair of cache_hmac_keys)
    7+K     1     tensor count N
    then N times:
            1     name length L, then L bytes UTF-8 name
            1     dtype (1 = float32, 2 = float16; same numbers as voxcache.v1.DType;
                  3 = float32 values stored as float16: every value was exactly a float16,
                  the reader widens them back to float32, bit for bit)
            1     ndim D, then D x u32 dimensions
            ...   prod(dims) * itemsize bytes of row-major little-endian data
    end-32  32    tag over utf8(key) || every byte before the tag:
                  K > 0: HMAC-SHA256 with the secret of that key id (RFC 2104);
                  K = 0: plain SHA-256 (no secret configured: a checksum, not a signature)

Why a signature and not a checksum: anyone who can write to Redis could otherwise make the
Embedder serve tensors of their choosing under any voice. With keys configured, only a
value signed by one of them is accepted; an unsigned one is rejected like a corrupt one.
Rotation: the first key signs, every listed key verifies, and the key id in the record says
which one to check with. The tag covers the key too, so a value copied under the wrong key
is rejected. Version-1 records (CRC-32) fail as "unknown record format" and are recomputed.
Encoder name and weights digest live in the key, which keeps an ECAPA entry at 822 bytes
unsigned, 822 + K signed, or 438 + K when its values are rounded to float16 (dtype 3). Any
language can read it; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from math import prod

import numpy as np

MAGIC = b"VXCR"
VERSION = 3
_READABLE = (2, 3)
_HEADER = struct.Struct("<4sBBB")
_TAG_BYTES = 32
_DTYPES: dict[int, np.dtype] = {1: np.dtype("<f4"), 2: np.dtype("<f2"), 3: np.dtype("<f2")}
_CODES: dict[str, int] = {"float32": 1, "float16": 2}
_HALVED = 3
#: Shortest secret accepted: 128 bits of a random token. Refuses placeholders like `change-me`.
MIN_SECRET_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RecordError(ValueError):
    """A stored value that is not a valid record for its key."""


class KeyringError(ValueError):
    """cache_hmac_keys is malformed: a configuration error, reported at start."""


@dataclass(frozen=True)
class Keyring:
    """The secrets that sign and verify records: the first signs, all verify; none = unsigned."""

    #: Key id -> secret. Left out of repr: a logged cache or keyring must not print a secret.
    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """`id:secret,id:secret`; ids are 1-64 of [A-Za-z0-9._-], secrets at least 16 bytes."""
        secrets: dict[str, bytes] = {}
        for number, pair in enumerate((p.strip() for p in spec.split(",") if p.strip()), 1):
            key_id, colon, secret = pair.partition(":")
            if not colon or not _KEY_ID.fullmatch(key_id):
                raise KeyringError(
                    f"cache_hmac_keys: entry {number} is not `id:secret` with an id of 1-64 letters, digits, . _ -"
                )
            if key_id in secrets:
                raise KeyringError(f"cache_hmac_keys: key id {key_id!r} appears twice")
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise KeyringError(
                    f"cache_hmac_keys: the secret of key id {key_id!r} is shorter than {MIN_SECRET_BYTES} bytes; "
                    'make one with: python3 -c "import secrets; print(secrets.token_urlsafe(32))"'
                )
            secrets[key_id] = secret.encode()
        return cls(secrets)

    @property
    def signing_id(self) -> str:
        """The key id new records carry; "" when unsigned."""
        return next(iter(self.secrets), "")

    def tag(self, key_id: str, key: str, body: bytes | memoryview) -> bytes:
        """The 32-byte tag of `body` stored under `key` (hashed in place: bundles are megabytes)."""
        digest = hashlib.sha256() if not key_id else hmac.new(self.secrets[key_id], digestmod=hashlib.sha256)
        digest.update(key.encode())
        digest.update(body)
        return digest.digest()


#: No secret configured: records carry a SHA-256 and any writer can forge them.
UNSIGNED = Keyring()


def encode(key: str, tensors: Mapping[str, np.ndarray], keyring: Keyring) -> bytes:
    if len(tensors) > 255:
        raise ValueError("a record holds at most 255 tensors")
    key_id = keyring.signing_id.encode()
    parts = [_HEADER.pack(MAGIC, VERSION, 0, len(key_id)), key_id, bytes([len(tensors)])]
    for name, array in tensors.items():
        raw_name = name.encode()
        code = _CODES.get(array.dtype.name)
        if code is None or len(raw_name) > 255 or array.ndim > 255:
            raise ValueError(f"cannot store tensor {name!r} of dtype {array.dtype} and ndim {array.ndim}")
        if code == _CODES["float32"] and _exactly_half(array):
            code = _HALVED
        parts.append(
            struct.pack(f"<B{len(raw_name)}sBB{array.ndim}I", len(raw_name), raw_name, code, array.ndim, *array.shape)
        )
        parts.append(np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes())
    body = b"".join(parts)
    return body + keyring.tag(keyring.signing_id, key, body)


def _exactly_half(array: np.ndarray) -> bool:
    """Whether float16 holds every value exactly (an encoder that rounds its output, e.g. ECAPA
    with --ecapa-float16): then half the bytes store it with nothing lost."""
    half = array.astype(np.float16)
    return bool(np.array_equal(half.astype(np.float32), array))


def decode(key: str, value: bytes, keyring: Keyring) -> dict[str, np.ndarray]:
    """Verify, then parse; the arrays are read-only views of `value`."""
    if len(value) < _HEADER.size + 1 + _TAG_BYTES:
        raise RecordError(f"record of {len(value)} bytes is too short")
    magic, version, _flags, id_len = _HEADER.unpack_from(value)
    if magic != MAGIC or version not in _READABLE:
        raise RecordError(f"unknown record format {magic!r} v{version}")
    key_id = value[_HEADER.size : _HEADER.size + id_len].decode("ascii", "replace")
    if key_id and key_id not in keyring.secrets:
        known = ", ".join(keyring.secrets) or "none: cache_hmac_keys is not set"
        raise RecordError(f"signed with key id {key_id!r}, which this Embedder does not have (it has {known})")
    if not key_id and keyring.secrets:
        raise RecordError("unsigned record, but cache_hmac_keys is set: only signed values are accepted")
    body = memoryview(value)[: len(value) - _TAG_BYTES]
    if not hmac.compare_digest(keyring.tag(key_id, key, body), value[-_TAG_BYTES:]):
        raise RecordError("signature mismatch" if key_id else "checksum mismatch")
    offset = _HEADER.size + id_len
    tensors: dict[str, np.ndarray] = {}
    try:
        count = body[offset]
        offset += 1
        for _ in range(count):
            name_len = body[offset]
            name = bytes(body[offset + 1 : offset + 1 + name_len]).decode()
            offset += 1 + name_len
            code, ndim = body[offset], body[offset + 1]
            offset += 2
            shape = struct.unpack_from(f"<{ndim}I", body, offset)
            offset += 4 * ndim
            dtype = _DTYPES[code]
            size = prod(shape) * dtype.itemsize
            if offset + size > len(body):
                raise RecordError("tensor data runs past the end of the record")
            array = np.frombuffer(body, dtype=dtype, count=prod(shape), offset=offset)
            if ndim != 1:
                array = array.reshape(shape)
            if code == _HALVED:
                array = array.astype(np.float32)
                array.setflags(write=False)
            tensors[name] = array
            offset += size
    except (IndexError, KeyError, struct.error, UnicodeDecodeError) as exc:
        raise RecordError(f"malformed record: {exc!r}") from exc
    if offset != len(body):
        raise RecordError(f"{len(body) - offset} trailing bytes after the last tensor")
    return tensors
