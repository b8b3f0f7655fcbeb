"""The Embed response as bytes: one serialized conditioning per entry, this request's fields appended."""

from __future__ import annotations

import numpy as np

from services.embedder import converters, embed_request
from services.embedder.cache.tiered import CacheTier
from services.embedder.conditioning import Conditioning
from services.embedder.core import CacheOptions, EmbedResult, Timings
from voxcache import tensors
from voxcache.v1 import embedder_pb2 as pb


def entry() -> Conditioning:
    speaker = np.linspace(-1, 1, 192, dtype=np.float32)
    speaker.setflags(write=False)
    return Conditioning("ecapa", "d" * 64, "voxcache:cond:ecapa:dddddddd:key", {"speaker": speaker})


def test_response_bytes_parse_to_the_entry_and_this_requests_tier_and_timings() -> None:
    conditioning = entry()
    first = converters.embed_response_bytes(EmbedResult(conditioning, CacheTier.COMPUTED, Timings(9.0, 0.5, 2.0, 6.0)))
    hit = pb.EmbedResponse.FromString(
        converters.embed_response_bytes(EmbedResult(conditioning, CacheTier.LOCAL, Timings(0.02, 0.01)))
    )
    miss = pb.EmbedResponse.FromString(first)
    for response in (miss, hit):
        wire = response.conditioning
        assert (wire.encoder, wire.weights_digest, wire.cache_key) == ("ecapa", "d" * 64, conditioning.cache_key)
        assert tensors.from_proto(wire.tensors["speaker"]).tobytes() == conditioning.tensors["speaker"].tobytes()
    assert (miss.cache_hit, miss.tier, miss.timings.extract_ms) == (False, pb.CACHE_TIER_COMPUTED, 6.0)
    assert (hit.cache_hit, hit.tier) == (True, pb.CACHE_TIER_LOCAL)
    assert (hit.timings.total_ms, hit.timings.cache_ms, hit.timings.decode_ms) == (0.02, 0.01, 0.0)


def test_each_entry_answers_with_its_own_tensors() -> None:
    a, b = (
        entry(),
        Conditioning("ecapa", "d" * 64, "voxcache:cond:ecapa:dddddddd:other", {"speaker": -entry().tensors["speaker"]}),
    )
    for c in (a, b, a):
        response = pb.EmbedResponse.FromString(
            converters.embed_response_bytes(EmbedResult(c, CacheTier.LOCAL, Timings()))
        )
        assert response.conditioning.cache_key == c.cache_key
        assert tensors.from_proto(response.conditioning.tensors["speaker"]).tobytes() == c.tensors["speaker"].tobytes()


def test_cache_options_reach_the_core_from_embed_and_preload_requests() -> None:
    options = pb.CacheOptions(ttl_seconds=60, bypass=True, pin=True)
    expected = CacheOptions(ttl_s=60, bypass=True, pin=True)
    with_options = embed_request.read(pb.EmbedRequest(voice_id="v", cache=options).SerializeToString())
    assert converters.embed_from_proto(with_options)["options"] == expected
    without = embed_request.read(pb.EmbedRequest(voice_id="v").SerializeToString())
    assert converters.embed_from_proto(without)["options"] == CacheOptions()
    assert converters.preload_item_from_proto(pb.PreloadRequest(audio=b"x", cache=options)).options == expected
    assert converters.preload_item_from_proto(pb.PreloadRequest(audio=b"x")).options == CacheOptions()
