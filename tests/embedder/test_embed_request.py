"""Embed's own request reader (services/embedder/embed_request.py) against the generated parser.

The generated parser is the oracle: for every request, including ones that repeat fields or
set both members of the oneof (protobuf merges concatenated messages, so the later one
counts), the reader must find the same input, clip and other fields, with the clip left as a
view of the received bytes. Requests that set only the input and the encoder are read without
the generated parser.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from google.protobuf.message import DecodeError

from services.embedder import embed_request
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
        "encoder with a wrong wire type": ser(voice_id="narrator", encoder="ecapa") + b"\x18\x07",
        "options set twice (merged)": ser(cache=options) + ser(voice_id="v") + ser(cache=pb.CacheOptions(bypass=True)),
        "encoder twice": ser(encoder="first") + ser(voice_id="v") + ser(encoder="second"),
        "non-ASCII voice_id and encoder": ser(voice_id="stimme-\u00e4\u00f6\u00fc-\u58f0", encoder="\u00e9"),
        "empty voice_id": b"\x12\x00",
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_the_reader_sees_what_the_generated_parser_sees(name: str) -> None:
    data = _cases()[name]
    expected = pb.EmbedRequest.FromString(data)
    call = read(data)
    which = expected.WhichOneof("input")
    if which == "audio":
        assert call.audio is not None and bytes(call.audio) == expected.audio
        assert isinstance(call.audio, memoryview) and call.audio.obj is data, "the clip must not be copied"
    else:
        assert call.audio is None
    assert call.voice_id == (expected.voice_id if which == "voice_id" else None)
    assert call.encoder == expected.encoder
    assert (call.cache is not None) == expected.HasField("cache")
    assert call.cache == (expected.cache if expected.HasField("cache") else None)


def test_requests_of_input_and_encoder_only_build_no_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes) -> None:
        raise AssertionError("the generated parser was used")

    monkeypatch.setattr(embed_request, "pb", SimpleNamespace(EmbedRequest=SimpleNamespace(FromString=refuse)))
    by_voice = read(pb.EmbedRequest(voice_id="narrator", encoder="ecapa").SerializeToString())
    assert (by_voice.voice_id, by_voice.encoder, by_voice.audio, by_voice.cache) == ("narrator", "ecapa", None, None)
    by_clip = read(pb.EmbedRequest(audio=CLIP).SerializeToString())
    assert by_clip.audio is not None and bytes(by_clip.audio) == CLIP and by_clip.voice_id is None


@pytest.mark.parametrize(
    "data",
    [
        pb.EmbedRequest(audio=CLIP).SerializeToString()[:-1],  # the clip runs past the end
        b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a length varint longer than 64 bits
        b"\x0b\x0c",  # a group
        b"\x12\x02\xc3\x28",  # a voice_id that is not UTF-8
        b"\x12\x01v\x1a\x01\xff",  # an encoder that is not UTF-8
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
        assert call.audio == (expected.audio if expected.WhichOneof("input") == "audio" else None)
        assert call.voice_id == (expected.voice_id if expected.WhichOneof("input") == "voice_id" else None)
        assert call.encoder == expected.encoder
