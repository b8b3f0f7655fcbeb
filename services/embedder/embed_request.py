"""An EmbedRequest read where it arrived: the uploaded clip is a view of gRPC's bytes, not a copy.

Why: the clip is nearly all of an upload request (285 KB for 5 s of 16-bit WAV), and parsed by
the generated code it is copied twice before the cache key's hash reads it: into the message,
then out again into a Python bytes object when `request.audio` is read. In the server each
copy of a 285 KB clip measured ~20 µs, against a cache hit's ~100 µs of handler time
(bench/embedder_bench.py). So the Embed method's deserializer walks the request's top-level
fields in protobuf's wire format (a varint key, then a varint, 8 bytes, 4 bytes or a
length-prefixed run), keeps `audio` as a memoryview of the received bytes, and gives the few
other bytes to the generated parser, which reads every other field as before.

Protobuf's own rules hold: of repeated occurrences of a field the last wins, and of the oneof
`input` whichever member came last. Bytes the walk does not expect (a group, a field running
past the end) go to the generated parser whole, which accepts or rejects them as it always did.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxcache.v1 import embedder_pb2 as pb

_FIELDS = pb.EmbedRequest.DESCRIPTOR.fields_by_name
_AUDIO = _FIELDS["audio"].number
#: The members of `oneof input`: a later one replaces an earlier audio.
_INPUTS = frozenset(field.number for field in pb.EmbedRequest.DESCRIPTOR.oneofs_by_name["input"].fields)
_LENGTH_DELIMITED = 2
_FIXED_SIZES = {1: 8, 5: 4}


@dataclass(slots=True)  # not frozen: made for every Embed call, and a frozen dataclass costs ~4x to make
class EmbedCall:
    """A parsed EmbedRequest: `message` holds every field but the clip, which is `audio` (set
    exactly when the request's input is a clip; an empty clip is an empty view)."""

    message: pb.EmbedRequest
    audio: bytes | memoryview | None


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
        clip, rest = _split(data)
    except _Unexpected:
        message = pb.EmbedRequest.FromString(data)
        return EmbedCall(message, message.audio if message.WhichOneof("input") == "audio" else None)
    message = pb.EmbedRequest.FromString(rest)
    return EmbedCall(message, None if clip is None else memoryview(data)[clip[0] : clip[1]])


def _split(data: bytes) -> tuple[tuple[int, int] | None, bytes]:
    """Where the clip that is the request's input lies, and every other field's bytes."""
    kept: list[bytes] = []
    run_start = at = 0
    clip: tuple[int, int] | None = None
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
        if number == _AUDIO and wire_type == _LENGTH_DELIMITED:
            clip = (body, at)
            kept.append(data[run_start:field_start])
            run_start = at
        elif number in _INPUTS and wire_type == _LENGTH_DELIMITED:
            clip = None  # a later voice_id replaces the clip
    kept.append(data[run_start:])
    return clip, b"".join(kept)
