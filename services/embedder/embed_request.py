"""An EmbedRequest read where it arrived: the uploaded clip is a view of gRPC's bytes, not a copy.

Why: the clip is nearly all of an upload request (285 KB for 5 s of 16-bit WAV), and parsed by
the generated code it is copied twice before the cache key's hash reads it: into the message,
then out again into a Python bytes object when `request.audio` is read. In the server each
copy of a 285 KB clip measured ~20 µs, against a cache hit's ~100 µs of handler time
(bench/embedder_bench.py). So the Embed method's deserializer walks the request's top-level
fields in protobuf's wire format (a varint key, then a varint, 8 bytes, 4 bytes or a
length-prefixed run), keeps `audio` as a memoryview of the received bytes, decodes the two
strings (`voice_id`, `encoder`) itself, and gives any other bytes (CacheOptions, fields it does
not know) to the generated parser. Most requests have none, and then no message is built at
all: parsing a 13-byte voice_id request and reading its fields back through the generated
message measured ~28 µs with cold CPU caches, which is what a server sees between requests
(bench/cold_bench.py).

Protobuf's own rules hold: of repeated occurrences of a field the last wins, and of the oneof
`input` whichever member came last. A string that is not UTF-8, and bytes the walk does not
expect (a group, a field running past the end), send the whole request to the generated parser,
which accepts or rejects it as it always did.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxcache.v1 import embedder_pb2 as pb

_FIELDS = pb.EmbedRequest.DESCRIPTOR.fields_by_name
_AUDIO = _FIELDS["audio"].number
_VOICE_ID = _FIELDS["voice_id"].number
_ENCODER = _FIELDS["encoder"].number
_LENGTH_DELIMITED = 2
_FIXED_SIZES = {1: 8, 5: 4}


@dataclass(slots=True)  # not frozen: made for every Embed call, and a frozen dataclass costs ~4x to make
class EmbedCall:
    """A read EmbedRequest. Of the `input` oneof, `audio` (a view of the received bytes; an empty
    clip is an empty view) or `voice_id` is set, or neither; `cache` is None when the request
    set no CacheOptions."""

    audio: bytes | memoryview | None
    voice_id: str | None
    encoder: str
    cache: pb.CacheOptions | None


class _Unexpected(Exception):
    """Bytes the walk leaves to the generated parser."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise _Unexpected
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def read(data: bytes) -> EmbedCall:
    """The request in `data`, with its clip (if that is its input) as a view of `data`."""
    try:
        return _walk(data)
    except _Unexpected:
        return _of_message(pb.EmbedRequest.FromString(data))


def _of_message(message: pb.EmbedRequest) -> EmbedCall:
    which = message.WhichOneof("input")
    return EmbedCall(
        message.audio if which == "audio" else None,
        message.voice_id if which == "voice_id" else None,
        message.encoder,
        message.cache if message.HasField("cache") else None,
    )


def _text(data: bytes, start: int, end: int) -> str:
    try:
        return str(data[start:end], "utf-8")
    except UnicodeDecodeError:
        raise _Unexpected from None  # the generated parser refuses it, as before


def _walk(data: bytes) -> EmbedCall:
    clip: tuple[int, int] | None = None
    voice_id: str | None = None
    encoder = ""
    others: list[bytes] = []  # every other field's bytes, in order, for the generated parser
    at = 0
    while at < len(data):
        field_start = at
        key, at = _varint(data, at)
        number, wire_type = key >> 3, key & 7
        if wire_type == _LENGTH_DELIMITED:
            length, at = _varint(data, at)
            body, at = at, at + length
        elif wire_type == 0:
            _, at = _varint(data, at)
        elif wire_type in _FIXED_SIZES:
            at += _FIXED_SIZES[wire_type]
        else:
            raise _Unexpected  # groups: long deprecated, and not in this message
        if at > len(data):
            raise _Unexpected
        # A field of a known number but the wrong wire type is an unknown field to protobuf.
        if number == _AUDIO and wire_type == _LENGTH_DELIMITED:
            clip, voice_id = (body, at), None  # the oneof's later member replaces the earlier
        elif number == _VOICE_ID and wire_type == _LENGTH_DELIMITED:
            clip, voice_id = None, _text(data, body, at)
        elif number == _ENCODER and wire_type == _LENGTH_DELIMITED:
            encoder = _text(data, body, at)
        else:
            others.append(data[field_start:at])
    cache = None
    if others:
        rest = pb.EmbedRequest.FromString(b"".join(others))
        cache = rest.cache if rest.HasField("cache") else None
    return EmbedCall(None if clip is None else memoryview(data)[clip[0] : clip[1]], voice_id, encoder, cache)
