"""SearchVoices on real parts: the real ECAPA, one real redis-server, two Embedders kept in
step through it, and the RPC over a real channel with two tenants."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio

from services.common.errors import InvalidInput, NotFound
from services.common.redis_server import LocalRedis
from services.embedder.core import Embedder, SearchQuery
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from tests.conftest import CountingEncoder, make_core
from tests.embedder.test_tenants import Tokens, as_, issued, start_embedder  # noqa: F401 (fixture)
from voxcache import tensors
from voxcache.v1 import embedder_pb2 as epb
from voxcache.v1 import embedder_pb2_grpc


@pytest.fixture(scope="module")
def third_speech() -> bytes:
    samples, rate = espeak(SENTENCES[2], voice="en-us+m7")
    return encode(fit_duration(samples, rate, 3.0), rate)


@pytest_asyncio.fixture
async def pair(encoder: CountingEncoder, redis_server: LocalRedis, prefix: str) -> AsyncIterator[tuple[Embedder, ...]]:
    """Two workers on one Redis and one prefix, as two processes behind a load balancer."""
    a = make_core(encoder, redis_server.url, prefix, search_sync_s=60.0)
    b = make_core(encoder, redis_server.url, prefix, search_sync_s=60.0)
    yield a, b
    await a.close()
    await b.close()


def names(result: Any) -> list[str]:
    return [hit.voice.voice_id for hit in result.hits]


async def eventually(check: Any, seconds: float = 5.0) -> None:
    """Pub/sub is asynchronous: poll until `check()` holds (or fail after `seconds`)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "the other worker never caught up"
        await asyncio.sleep(0.05)


async def test_a_clip_finds_its_own_voice_first_with_its_cosine(
    core: Embedder, speech: dict[str, Any], other_speech: bytes, third_speech: bytes
) -> None:
    for voice_id, clip in (("us", speech["wav"]), ("gb", other_speech), ("m7", third_speech)):
        await core.register_voice(voice_id, clip)
    found = await core.search_voices(SearchQuery(audio=other_speech), k=2)
    assert found.encoder == "ecapa" and found.searched == 3
    assert names(found)[0] == "gb" and len(found.hits) == 2
    assert found.hits[0].cosine == pytest.approx(1.0, abs=1e-3)  # the same clip: the same vector
    assert found.hits[0].cosine > found.hits[1].cosine
    assert found.hits[0].voice.audio_sha256 and found.hits[0].voice.duration_s > 2

    # By voice: its neighbours, itself left out; the cosines are those of the vectors.
    near = await core.search_voices(SearchQuery(voice_id="us"), k=10)
    assert "us" not in names(near) and set(names(near)) == {"gb", "m7"} and near.searched == 2
    us = (await core.embed(voice_id="us")).conditioning.tensors["speaker"]
    for hit in near.hits:
        theirs = (await core.embed(voice_id=hit.voice.voice_id)).conditioning.tensors["speaker"]
        expected = float(us @ theirs / np.linalg.norm(us) / np.linalg.norm(theirs))
        assert hit.cosine == pytest.approx(expected, abs=1e-4)

    # A vector query need not be normalised; a deleted voice is gone at once on this worker.
    by_vector = await core.search_voices(SearchQuery(vector=us * 425.0), k=1)
    assert names(by_vector) == ["us"]
    await core.delete_voice("us")
    assert "us" not in names(await core.search_voices(SearchQuery(vector=us), k=10))


async def test_register_on_one_worker_is_found_on_the_other_and_a_delete_there_reaches_back(
    pair: tuple[Embedder, Embedder], speech: dict[str, Any], other_speech: bytes
) -> None:
    a, b = pair
    await a.register_voice("first", speech["wav"])
    probe = SearchQuery(audio=other_speech)
    assert names(await b.search_voices(probe)) == ["first"]  # B loads on first use
    assert names(await a.search_voices(probe)) == ["first"]  # A too: both now listen

    await a.register_voice("second", other_speech)  # announced: B applies it within moments

    async def b_sees_second() -> bool:
        found = await b.search_voices(probe, k=1)
        return found.searched == 2 and names(found) == ["second"]

    await eventually(b_sees_second)
    await b.delete_voice("second")

    async def a_forgot_second() -> bool:
        found = await a.search_voices(probe)
        return found.searched == 1 and names(found) == ["first"]  # gone from A's copy, not only filtered

    await eventually(a_forgot_second)
    assert a.indexes.reloads == 1 and b.indexes.reloads == 1  # each change applied as one voice, no reload
    figures = a.snapshot()
    assert (figures.indexed_voices, figures.index_loads) == (1, 1) and figures.index_bytes >= 192 * 4


async def test_a_missed_announcement_is_caught_by_the_version_check(
    encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any], other_speech: bytes
) -> None:
    a = make_core(encoder, redis_server.url, prefix)
    b = make_core(encoder, redis_server.url, prefix, search_sync_s=0.3)
    try:
        await a.register_voice("first", speech["wav"])
        probe = SearchQuery(audio=other_speech)
        assert names(await b.search_voices(probe)) == ["first"]
        await b.indexes.close()  # B stops listening, as a dropped subscription would
        b.indexes._listener = asyncio.get_running_loop().create_future()  # and does not resubscribe
        await a.register_voice("second", other_speech)
        await asyncio.sleep(0.05)
        assert names(await b.search_voices(probe)) == ["first"], "B heard of it without listening?"
        await asyncio.sleep(0.35)  # past --search-sync-s: B compares versions and reloads
        assert names(await b.search_voices(probe, k=1)) == ["second"]
        assert b.indexes.reloads == 2
    finally:
        b.indexes._listener = None
        await a.close()
        await b.close()


async def test_a_worker_loads_voices_registered_before_search_existed(
    core: Embedder, encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any]
) -> None:
    """Voices whose vectors are not in Redis (older registrations) are indexed from their cached conditioning."""
    await core.register_voice("old", speech["wav"])
    await core.cache.store.delete(f"{prefix}:vectors:ecapa:{encoder.weights_digest[:8]}")
    later = make_core(encoder, redis_server.url, prefix)
    try:
        calls = encoder.calls
        found = await later.search_voices(SearchQuery(voice_id="old"))
        assert found.hits == [] and found.searched == 0  # found its vector, and left it out of its own search
        assert encoder.calls == calls  # from the pinned cache entry, not the model
        vector = (await later.embed(voice_id="old")).conditioning.tensors["speaker"]
        assert names(await later.search_voices(SearchQuery(vector=vector))) == ["old"]
    finally:
        await later.close()


async def test_searches_keep_working_from_the_copy_while_redis_is_down(
    encoder: CountingEncoder, speech: dict[str, Any], other_speech: bytes
) -> None:
    with LocalRedis() as private:
        worker = make_core(encoder, private.url, "outage", search_sync_s=0.0)
        peer = make_core(encoder, private.url, "outage")
        try:
            await worker.register_voice("kept", speech["wav"])
            await peer.register_voice("theirs", other_speech)  # a voice this worker never resolved
            probe = SearchQuery(audio=other_speech)
            assert names(await worker.search_voices(probe)) == ["theirs", "kept"]
            private.close()
            during = await worker.search_voices(probe)  # fail open: the copy answers, checked every time
            assert names(during) == ["theirs", "kept"] and during.searched == 2
            # The voice it registered keeps its metadata; the other is known by name only.
            assert during.hits[1].voice.audio_sha256 and during.hits[0].voice.audio_sha256 == ""
        finally:
            await worker.close()
            await peer.close()


async def test_bad_queries_are_refused_precisely(core: Embedder, speech: dict[str, Any]) -> None:
    await core.register_voice("only", speech["wav"])
    cases = [
        (SearchQuery(vector=np.ones(192, np.float32)), {"k": 101}, InvalidInput, ("k",)),
        (SearchQuery(vector=np.ones(96, np.float32)), {}, InvalidInput, ("vector",)),
        (SearchQuery(vector=np.zeros(192, np.float32)), {}, InvalidInput, ("vector",)),
        (SearchQuery(), {}, InvalidInput, ("audio", "vector", "conditioning", "voice_id")),
        (SearchQuery(voice_id="ghost"), {}, NotFound, ("voice_id",)),
        (SearchQuery(vector=np.ones(192, np.float32)), {"encoder": "xvector"}, InvalidInput, ("encoder",)),
        (
            SearchQuery(conditioning={"speaker": np.ones(192, np.float32)}, conditioning_encoder="indextts2"),
            {},
            InvalidInput,
            ("conditioning.encoder",),
        ),
        (SearchQuery(conditioning={"style": np.ones(192, np.float32)}), {}, InvalidInput, ("conditioning.tensors",)),
    ]
    for query, extra, kind, fields in cases:
        with pytest.raises(kind) as caught:
            await core.search_voices(query, **extra)
        assert caught.value.fields == fields, (query, caught.value.message)
    # k = 0 means the default; conditioning as Embed returns it is a query.
    own = (await core.embed(voice_id="only")).conditioning
    found = await core.search_voices(SearchQuery(conditioning=own.tensors, conditioning_encoder="ecapa"), k=0)
    assert names(found) == ["only"]


async def test_over_grpc_each_tenant_searches_only_its_own_voices(
    encoder: CountingEncoder,
    redis_server: LocalRedis,
    prefix: str,
    issued: Tokens,  # noqa: F811 (the imported fixture)
    speech: dict[str, Any],
    other_speech: bytes,
) -> None:
    running = await start_embedder(encoder, redis_server, prefix, issued)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            acme, globex = as_(issued.acme), as_(issued.globex)
            await stub.RegisterVoice(
                epb.RegisterVoiceRequest(voice_id="anchor", audio=speech["wav"]), metadata=acme, timeout=30
            )
            await stub.RegisterVoice(
                epb.RegisterVoiceRequest(voice_id="rival", audio=other_speech), metadata=globex, timeout=30
            )
            request = epb.SearchVoicesRequest(audio=speech["wav"], k=5)
            mine = await stub.SearchVoices(request, metadata=acme, timeout=30)
            assert [h.voice.voice_id for h in mine.hits] == ["anchor"] and mine.searched == 1
            assert mine.hits[0].cosine == pytest.approx(1.0, abs=1e-3) and mine.encoder == "ecapa"
            theirs = await stub.SearchVoices(request, metadata=globex, timeout=30)
            assert [h.voice.voice_id for h in theirs.hits] == ["rival"] and theirs.hits[0].cosine < 0.9
            by_tensor = epb.SearchVoicesRequest(vector=tensors.to_proto(np.ones((1, 192), np.float32)))
            assert len((await stub.SearchVoices(by_tensor, metadata=globex, timeout=30)).hits) == 1
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SearchVoices(epb.SearchVoicesRequest(voice_id="anchor"), metadata=globex, timeout=30)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await running.stop()


async def test_without_redis_the_copy_is_built_from_the_in_process_registry(
    encoder: CountingEncoder, prefix: str, speech: dict[str, Any], other_speech: bytes
) -> None:
    alone = make_core(encoder, None, prefix)  # --redis-url none: memory registry, no shared store
    try:
        await alone.register_voice("solo", speech["wav"])  # before the first search: found by the load
        assert names(await alone.search_voices(SearchQuery(audio=other_speech))) == ["solo"]
        await alone.register_voice("duet", other_speech)  # after it: applied to the copy directly
        found = await alone.search_voices(SearchQuery(audio=other_speech), k=1)
        assert names(found) == ["duet"] and found.searched == 2
        await alone.delete_voice("duet")
        assert names(await alone.search_voices(SearchQuery(audio=other_speech))) == ["solo"]
    finally:
        await alone.close()
