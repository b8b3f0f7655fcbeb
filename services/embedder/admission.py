"""Admission of extractions: refuse new model work at once when it cannot be done in time.

A refused miss gets RESOURCE_EXHAUSTED immediately, which a client can back off from, rather
than a place at the end of a queue it will time out in: a request is refused when too many
extractions are queued, and also when its deadline cannot be met by the queue ahead of it
(estimated from the recent median extraction time).

An admitted extraction waits here for one of `slots` model slots (one per model worker, or
`max_batch` per worker when misses are batched). That wait is the queue:
while in it the extraction can still be dropped (single-flight cancels it when every caller
has gone), and once it holds a slot it has started and runs to the end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.common.errors import Overloaded
from services.embedder.cache import singleflight

T = TypeVar("T")


class Admission:
    def __init__(
        self,
        max_pending: int,
        *,
        workers: int,
        typical_s: Callable[[], float | None],
        slots: int | None = None,
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        """`workers`: concurrent forward passes (what the finish estimate divides by); `slots`:
        extractions that may be past the queue at once (default: one per worker); `on_shed`:
        called for every refusal, so operators can alert on shedding."""
        self._on_shed = on_shed
        self.max_pending = max_pending
        self.workers = max(1, workers)
        #: A recent typical extraction time in seconds, or None before the first one.
        self._typical_s = typical_s
        #: Extractions admitted and not finished: queued for a slot or running.
        self.pending = 0
        self._slots = asyncio.Semaphore(max(1, slots or self.workers))

    def finish_estimate_s(self) -> float | None:
        """How long a request admitted now would take to finish, waiting behind the queue."""
        typical = self._typical_s()
        return None if typical is None else (self.pending // self.workers + 1) * typical

    async def run(self, work: Callable[[], Awaitable[T]], deadline: float | None = None) -> T:
        """`deadline` is on the time.monotonic() clock (None: the caller set none)."""
        if self.pending >= self.max_pending:
            self._shed()
            raise Overloaded(f"{self.pending} extractions already queued; retry with backoff")
        estimate = self.finish_estimate_s()
        if deadline is not None and estimate is not None:
            left = deadline - time.monotonic()
            if estimate > left:
                self._shed()
                raise Overloaded(
                    f"{self.pending} extractions are queued ahead: this one would finish in about "
                    f"{estimate:.1f} s, but the deadline leaves {max(left, 0.0):.1f} s; retry in "
                    f"{estimate:.0f} s or with a longer deadline"
                )
        self.pending += 1
        try:
            async with self._slots:  # queued: a cancel here (every caller gone) drops the extraction
                singleflight.started()
                return await work()
        finally:
            self.pending -= 1

    def _shed(self) -> None:
        if self._on_shed is not None:
            self._on_shed()
