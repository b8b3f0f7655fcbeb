"""Embed's own request reader (services/embedder/embed_request.py) against the generated parser.

The generated parser is the oracle: for every request, including ones that repeat fields or
set both members of the oneof (protobuf merges concatenated messages, so the later one
counts), the reader must find the same input, clip and other fields, with the clip left as a
view of the received bytes.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError

from services.embedder.embed_request import read
from voxcache.v1 import embedder_pb2 as pb

CLIP = bytes(range(256)) * 600  # long enough for a multi-byte length prefix
OTHER = b"RIFF" + bytes(300)


def _cases() -> dict[str, bytes]:
    def ser(**fields: object) -> bytes:
        return pb.EmbedRequest(**fields).SerializeToString()  # type: ignore[arg-type]

    options = pb.CacheOptions(ttl_seconds=60, pin=True)
    unknown = b"\xa8\x1f\x05"  # field 500, varint 5: unknown to this message, kept by the parser
    return {
        "clip": ser(audio=CLIP),
        "clip with encoder and options": ser(audio=CLIP, encoder="ecapa", cache=options),
        "options before the clip": ser(cache=options) + ser(encoder="ecapa") + ser(audio=CLIP),
        "voice": ser(voice_id="narrator", encoder="ecapa"),
        "empty clip": b"\x0a\x00",
        "nothing": b"",
        "clip then voice": ser(audio=CLIP) + ser(voice_id="narrator"),
        "voice then clip": ser(voice_id="narrator") + ser(audio=CLIP),
        "two clips": ser(audio=OTHER) + ser(audio=CLIP, encoder="x"),
        "unknown field around the clip": unknown + ser(audio=CLIP) + unknown,
        "voice_id with a wrong wire type after the clip": ser(audio=CLIP) + b"\x10\x01",
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_the_reader_sees_what_the_generated_parser_sees(name: str) -> None:
    data = _cases()[name]
    expected = pb.EmbedRequest.FromString(data)
    call = read(data)
    if expected.WhichOneof("input") == "audio":
        assert call.audio is not None and bytes(call.audio) == expected.audio
        assert isinstance(call.audio, memoryview) and call.audio.obj is data, "the clip must not be copied"
    else:
        assert call.audio is None
        assert call.message.WhichOneof("input") == expected.WhichOneof("input")
        assert call.message.voice_id == expected.voice_id
    assert call.message.encoder == expected.encoder
    assert call.message.cache == expected.cache
    assert call.message.HasField("cache") == expected.HasField("cache")


@pytest.mark.parametrize(
    "data",
    [
        pb.EmbedRequest(audio=CLIP).SerializeToString()[:-1],  # the clip runs past the end
        b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a length varint longer than 64 bits
        b"\x0b\x0c",  # a group
    ],
)
def test_bytes_the_reader_does_not_expect_are_judged_by_the_generated_parser(data: bytes) -> None:
    try:
        expected = pb.EmbedRequest.FromString(data)
    except DecodeError:
        with pytest.raises(DecodeError):
            read(data)
    else:
        call = read(data)
        assert call.message == expected
        assert call.audio == (expected.audio if expected.WhichOneof("input") == "audio" else None)
