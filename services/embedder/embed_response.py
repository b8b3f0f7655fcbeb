"""An EmbedResponse's own fields (cache_hit, tier, timings) written in protobuf's wire format.

Why: converters.embed_response_bytes answers every hit with the entry's serialized
`conditioning` (made once per entry) followed by this request's fields. Setting six fields of a
generated message and serializing it measured ~21 µs with cold CPU caches, which is how a
server runs between requests (bench/cold_bench.py); packing the same bytes with `struct` ~6 µs.

The field numbers and wire types come from the generated descriptors, so the protos stay the
one source of truth, and every field is written even when it holds its default: protobuf parsers
read an explicit zero as the field being zero, and a fixed layout is one `pack`. The tests parse
the bytes back with the generated parser.
"""

from __future__ import annotations

import struct

from google.protobuf.descriptor import Descriptor

from voxcache.v1 import embedder_pb2 as pb

_VARINT, _FIXED64, _LENGTH_DELIMITED = 0, 1, 2


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(message: Descriptor, field: str, wire_type: int) -> bytes:
    return _encode_varint(message.fields_by_name[field].number << 3 | wire_type)


_RESPONSE, _TIMINGS = pb.EmbedResponse.DESCRIPTOR, pb.Timings.DESCRIPTOR
_TIMING_TAGS = tuple(_tag(_TIMINGS, name, _FIXED64) for name in ("total_ms", "cache_ms", "decode_ms", "extract_ms"))
#: Each timing as its tag and a little-endian double: the body of the `timings` field.
_TIMINGS_BODY = struct.Struct("<" + "".join(f"{len(tag)}sd" for tag in _TIMING_TAGS))
_TIMINGS_FIELD = _tag(_RESPONSE, "timings", _LENGTH_DELIMITED) + _encode_varint(_TIMINGS_BODY.size)
_CACHE_HIT = tuple(_tag(_RESPONSE, "cache_hit", _VARINT) + _encode_varint(value) for value in (0, 1))
#: The tier field, ready, for each CacheTier value.
_TIERS = {value: _tag(_RESPONSE, "tier", _VARINT) + _encode_varint(value) for value in pb.CacheTier.values()}


def own_fields(cache_hit: bool, tier: int, timings_ms: tuple[float, float, float, float]) -> bytes:
    """cache_hit, tier (a pb.CacheTier value) and timings (total, cache, decode, extract) as
    serialized EmbedResponse fields."""
    (t0, t1, t2, t3), (total, cache, decode, extract) = _TIMING_TAGS, timings_ms
    timings = _TIMINGS_BODY.pack(t0, total, t1, cache, t2, decode, t3, extract)
    return b"".join((_CACHE_HIT[cache_hit], _TIERS[tier], _TIMINGS_FIELD, timings))
