"""Coalesce concurrent identical misses so the model runs once per key, and drop what nobody awaits.

The work runs in its own task, so a caller that goes (deadline, cancel, client gone) stops
waiting without stopping the others. When the last caller of a key has gone:
- work that has not started yet (still queued for a model slot) is cancelled and counted as
  dropped: nobody would read its result, and every miss queued behind it would wait for it;
- work that has started (it called `started()`) finishes and is cached for whoever asks
  next: the model time is being spent anyway.
The work says when it starts through a context variable set in its own task, so the layers
between this class and the model (the cache's fill, admission) keep their plain signatures.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class _Flight(Generic[T]):
    task: asyncio.Task[T] = field(init=False)
    waiters: int = 0
    #: Past the point where dropping it saves anything: it runs to the end.
    started: bool = False


#: The flight whose task is running; None outside single-flight work.
_current: contextvars.ContextVar[_Flight[object] | None] = contextvars.ContextVar("voxcache_flight", default=None)


def started() -> None:
    """Called by single-flight work at its point of no return (a model slot was granted).

    From here on the work is no longer dropped when its callers go. Outside single-flight
    work (a direct call) it does nothing.
    """
    flight = _current.get()
    if flight is not None:
        flight.started = True


class SingleFlight(Generic[T]):
    def __init__(self, on_drop: Callable[[], None] | None = None) -> None:
        self._inflight: dict[str, _Flight[T]] = {}
        #: Called once per work dropped before it started (for the dropped-extractions counter).
        self._on_drop = on_drop

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Return (result, joined) where joined is True if another caller started the work."""
        flight = self._inflight.get(key)
        joined = flight is not None
        if flight is None:
            flight = self._start(key, work)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task), joined
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.started and not flight.task.done():
                self._drop(key, flight)

    def _start(self, key: str, work: Callable[[], Awaitable[T]]) -> _Flight[T]:
        flight: _Flight[T] = _Flight()
        context = contextvars.copy_context()
        context.run(_current.set, flight)  # type: ignore[arg-type]
        flight.task = asyncio.get_running_loop().create_task(_awaited(work), context=context)
        self._inflight[key] = flight

        def forget(_task: asyncio.Task[T]) -> None:
            if self._inflight.get(key) is flight:  # a dropped flight's key may already have a new one
                del self._inflight[key]

        flight.task.add_done_callback(forget)
        # Retrieve the exception so a failure with no waiter left is not logged as "never retrieved".
        flight.task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return flight

    def _drop(self, key: str, flight: _Flight[T]) -> None:
        """Every caller has gone before the work started: cancel it, and let a new caller start afresh."""
        if self._inflight.get(key) is flight:
            del self._inflight[key]  # now, not when the task ends: a newcomer must not join a cancelled task
        flight.task.cancel()
        if self._on_drop is not None:
            self._on_drop()

    def __len__(self) -> int:
        return len(self._inflight)


async def _awaited(work: Callable[[], Awaitable[T]]) -> T:
    """`work()` called inside the flight's task, so it sees the flight's context from its first line."""
    return await work()
