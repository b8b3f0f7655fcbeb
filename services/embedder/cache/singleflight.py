"""Coalesce concurrent identical misses so the model runs once per key.

The work runs in its own task: a caller that is cancelled (deadline, client gone)
stops waiting, but the extraction finishes and is cached for the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Task[T]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Return (result, joined) where joined is True if another caller started the work."""
        task = self._inflight.get(key)
        joined = task is not None
        if task is None:
            task = asyncio.ensure_future(work())
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
            # Retrieve the exception so a failure with no waiter left is not logged as "never retrieved".
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(task), joined

    def __len__(self) -> int:
        return len(self._inflight)
