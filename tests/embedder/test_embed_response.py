"""The response fields embed_response.py packs by hand read back, through the generated parser,
as the message the generated code would have built."""

from __future__ import annotations

import pytest

from services.embedder import embed_response
from voxcache.v1 import embedder_pb2 as pb

TIMINGS = [(0.0, 0.0, 0.0, 0.0), (12.5, 0.031, 2.25, 187.0), (1e300, -1.5, 5e-324, 0.1)]


@pytest.mark.parametrize("tier", pb.CacheTier.values())
@pytest.mark.parametrize("cache_hit", [False, True])
@pytest.mark.parametrize("timings", TIMINGS)
def test_own_fields_read_back_as_the_generated_message(
    tier: int, cache_hit: bool, timings: tuple[float, float, float, float]
) -> None:
    total, cache, decode, extract = timings
    expected = pb.EmbedResponse(
        cache_hit=cache_hit,
        tier=tier,  # type: ignore[arg-type]
        timings=pb.Timings(total_ms=total, cache_ms=cache, decode_ms=decode, extract_ms=extract),
    )
    assert pb.EmbedResponse.FromString(embed_response.own_fields(cache_hit, tier, timings)) == expected


def test_own_fields_follow_a_conditioning_field() -> None:
    head = pb.EmbedResponse(conditioning={"encoder": "ecapa", "cache_key": "k"}).SerializeToString()
    response = pb.EmbedResponse.FromString(head + embed_response.own_fields(True, pb.CACHE_TIER_REDIS, (1, 2, 3, 4)))
    assert (response.conditioning.encoder, response.conditioning.cache_key) == ("ecapa", "k")
    assert (response.cache_hit, response.tier, response.timings.extract_ms) == (True, pb.CACHE_TIER_REDIS, 4.0)
