"""The binary value stored in Redis for one Conditioning; nothing else knows its bytes.

Layout (all integers little-endian), version 1:

    offset  size  field
    0       4     magic  b"VXCR"
    4       1     version (1)
    5       1     flags (0; reserved)
    6       1     tensor count N
    then N times:
            1     name length L, then L bytes UTF-8 name
            1     dtype (1 = float32, 2 = float16; same numbers as voxcache.v1.DType)
            1     ndim D, then D x u32 dimensions
            ...   prod(dims) * itemsize bytes of row-major little-endian data
    end-4   4     CRC-32 (IEEE, zlib/Go hash/crc32/java.util.zip.CRC32) of
                  utf8(key) || every byte before the CRC

The CRC covers the key too, so a value copied under the wrong key is rejected
like a corrupt one. Encoder name and weights digest live in the key, which keeps
an ECAPA entry at 793 bytes. Any language can read it; nothing is pickled.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from math import prod

import numpy as np

MAGIC = b"VXCR"
VERSION = 1
_HEADER = struct.Struct("<4sBBB")
_CRC = struct.Struct("<I")
_DTYPES: dict[int, np.dtype] = {1: np.dtype("<f4"), 2: np.dtype("<f2")}
_CODES: dict[str, int] = {"float32": 1, "float16": 2}


class RecordError(ValueError):
    """A stored value that is not a valid record for its key."""


def encode(key: str, tensors: Mapping[str, np.ndarray]) -> bytes:
    if len(tensors) > 255:
        raise ValueError("a record holds at most 255 tensors")
    parts = [_HEADER.pack(MAGIC, VERSION, 0, len(tensors))]
    for name, array in tensors.items():
        raw_name = name.encode()
        code = _CODES.get(array.dtype.name)
        if code is None or len(raw_name) > 255 or array.ndim > 255:
            raise ValueError(f"cannot store tensor {name!r} of dtype {array.dtype} and ndim {array.ndim}")
        parts.append(
            struct.pack(f"<B{len(raw_name)}sBB{array.ndim}I", len(raw_name), raw_name, code, array.ndim, *array.shape)
        )
        parts.append(np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes())
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body, zlib.crc32(key.encode())))


def decode(key: str, value: bytes) -> dict[str, np.ndarray]:
    """Parse and verify; the arrays are read-only views of `value`."""
    if len(value) < _HEADER.size + _CRC.size:
        raise RecordError(f"record of {len(value)} bytes is too short")
    (crc,) = _CRC.unpack_from(value, len(value) - _CRC.size)
    body = memoryview(value)[: len(value) - _CRC.size]
    if zlib.crc32(body, zlib.crc32(key.encode())) != crc:
        raise RecordError("checksum mismatch")
    magic, version, _flags, count = _HEADER.unpack_from(body)
    if magic != MAGIC or version != VERSION:
        raise RecordError(f"unknown record format {magic!r} v{version}")
    offset = _HEADER.size
    tensors: dict[str, np.ndarray] = {}
    try:
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
            tensors[name] = np.frombuffer(body, dtype=dtype, count=prod(shape), offset=offset).reshape(shape)
            offset += size
    except (IndexError, KeyError, struct.error, UnicodeDecodeError) as exc:
        raise RecordError(f"malformed record: {exc!r}") from exc
    if offset != len(body):
        raise RecordError(f"{len(body) - offset} trailing bytes after the last tensor")
    return tensors
