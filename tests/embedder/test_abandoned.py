"""Queued extractions whose every caller has gone are dropped; started ones finish and are cached.

The issue this guards against: 100 distinct misses with a 5 s deadline once ran 65
extractions nobody was waiting for, and the next new miss waited 25.8 s behind them.
Real ECAPA, a real gRPC server, the encoder held by the CountingEncoder's `before` hook.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from services.embedder.server import RunningEmbedder
from tests.audio_fixtures import encode
from tests.conftest import CountingEncoder
from voxcache import AsyncEmbedderClient, VoxcacheError

QUEUED = 6


@pytest.fixture
async def client(embedder_service: RunningEmbedder) -> AsyncIterator[AsyncEmbedderClient]:
    async with AsyncEmbedderClient(f"127.0.0.1:{embedder_service.port}") as client:
        yield client


def clips(speech: dict[str, Any], n: int) -> list[bytes]:
    """n distinct clips of one voice (different gains, so different bytes and keys)."""
    return [encode(speech["samples"] * (0.9 - 0.05 * i), speech["rate"]) for i in range(n)]


async def until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_queued_misses_whose_callers_have_gone_never_reach_the_model(
    client: AsyncEmbedderClient, embedder_service: RunningEmbedder, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    first, *queued, fresh = clips(speech, QUEUED + 2)
    gate = threading.Event()
    encoder.before = lambda: gate.wait(10)
    try:
        running = asyncio.create_task(client.embed(first))  # holds the only model slot
        await until(lambda: encoder.calls == 1)
        outcomes = await asyncio.gather(*(client.embed(clip, timeout=0.4) for clip in queued), return_exceptions=True)
        assert all(isinstance(o, VoxcacheError) for o in outcomes), outcomes
        assert {o.code for o in outcomes} == {grpc.StatusCode.DEADLINE_EXCEEDED}  # type: ignore[union-attr]
        core = embedder_service.core
        # The server notices each caller go; a dropped task leaves the queue on its next step.
        await until(lambda: core.stats.dropped_extractions == QUEUED and core._admission.pending == 1)
    finally:
        gate.set()
    assert (await running).tier == "computed"  # it had started: it finished for its caller

    # The next new miss waits for nobody: the model runs for it alone.
    encoder.before = None
    started = time.monotonic()
    assert (await client.embed(fresh, timeout=5)).tier == "computed"
    assert time.monotonic() - started < 3.0
    assert encoder.calls == 2  # the first clip and this one; the dropped six never ran
    stats = await client.stats()
    assert (stats["dropped_extractions"], stats["extractions"]) == (QUEUED, 2)
    assert (await client.embed(queued[0])).tier == "computed"  # dropped means not cached either


async def test_a_queued_miss_with_one_caller_left_is_not_dropped(
    client: AsyncEmbedderClient, embedder_service: RunningEmbedder, encoder: CountingEncoder, speech: dict[str, Any]
) -> None:
    first, shared = clips(speech, 2)
    gate = threading.Event()
    encoder.before = lambda: gate.wait(10)
    try:
        running = asyncio.create_task(client.embed(first))
        await until(lambda: encoder.calls == 1)
        patient = asyncio.create_task(client.embed(shared))  # no deadline: it stays
        await asyncio.sleep(0.2)
        with pytest.raises(VoxcacheError) as caught:
            await client.embed(shared, timeout=0.3)  # joins the same queued extraction, then goes
        assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.sleep(0.3)
    finally:
        gate.set()
    await running
    assert (await patient).tier == "computed"
    assert encoder.calls == 2 and embedder_service.core.stats.dropped_extractions == 0
    assert (await client.embed(shared)).cache_hit
