import asyncio

import pytest

from services.embedder.cache import singleflight
from services.embedder.cache.singleflight import SingleFlight


async def test_concurrent_callers_share_one_run() -> None:
    flights: SingleFlight[int] = SingleFlight()
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    callers = [asyncio.create_task(flights.run("k", work)) for _ in range(64)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers)
    assert runs == 1
    assert [value for value, _ in results] == [42] * 64
    assert sum(joined for _, joined in results) == 63
    assert len(flights) == 0


async def test_cancelled_leader_does_not_cancel_the_work() -> None:
    flights: SingleFlight[str] = SingleFlight()
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    leader = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    follower = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    leader.cancel()
    release.set()
    assert (await follower) == ("done", True)
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_failure_reaches_every_waiter_and_is_not_cached() -> None:
    flights: SingleFlight[int] = SingleFlight()

    async def boom() -> int:
        await asyncio.sleep(0)
        raise ValueError("bad clip")

    results = await asyncio.gather(*(flights.run("k", boom) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)

    async def ok() -> int:
        return 1

    assert await flights.run("k", ok) == (1, False)


async def test_work_not_started_is_dropped_when_every_caller_has_gone() -> None:
    dropped: list[str] = []
    flights: SingleFlight[str] = SingleFlight(on_drop=lambda: dropped.append("k"))
    slot = asyncio.Event()  # the model slot this work queues for
    ran = False

    async def queued_work() -> str:
        nonlocal ran
        await slot.wait()
        singleflight.started()
        ran = True
        return "late"

    callers = [asyncio.create_task(flights.run("k", queued_work)) for _ in range(3)]
    await asyncio.sleep(0)
    for caller in callers:
        caller.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    assert dropped == ["k"] and len(flights) == 0
    slot.set()
    await asyncio.sleep(0.01)
    assert not ran

    async def fresh() -> str:
        return "fresh"

    assert await flights.run("k", fresh) == ("fresh", False)  # a newcomer starts afresh, never joins the dropped one


async def test_started_work_finishes_after_every_caller_has_gone() -> None:
    dropped: list[str] = []
    flights: SingleFlight[str] = SingleFlight(on_drop=lambda: dropped.append("k"))
    release = asyncio.Event()
    finished = asyncio.Event()

    async def running_work() -> str:
        singleflight.started()
        await release.wait()
        finished.set()
        return "done"

    caller = asyncio.create_task(flights.run("k", running_work))
    await asyncio.sleep(0)
    caller.cancel()
    release.set()
    await asyncio.wait_for(finished.wait(), 1)
    assert dropped == []
