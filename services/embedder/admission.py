"""Admission of extractions: refuse new model work at once when too much is already queued.

A refused miss gets RESOURCE_EXHAUSTED immediately, which a client can back off from, rather
than a place at the end of a queue it will time out in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.common.errors import Overloaded

T = TypeVar("T")


class Admission:
    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.pending = 0

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        if self.pending >= self.max_pending:
            raise Overloaded(f"{self.pending} extractions already queued; retry with backoff")
        self.pending += 1
        try:
            return await work()
        finally:
            self.pending -= 1
