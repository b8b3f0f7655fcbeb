"""Micro-batching of misses: concurrent distinct clips share one forward pass.

Between the core and an encoder's model pool. A forward pass over B clips costs far less
than B passes on a GPU (and somewhat less on a CPU with idle cores), so when
`--batch-window-ms` is set, clips that arrive within that window of the first one, or while
every model worker is busy, are run together, up to `--max-batch`. Clips of very different
lengths are not padded into one pass: a group is split into length buckets, each one pass.
Relative lengths keep padding out of each clip's embedding (encoders/ecapa.py).

A failed pass fails nobody yet: its clips are retried one by one, so only a clip the model
cannot use fails, exactly as it would have alone. With the window at 0, or for an encoder
without `encode_batch`, each clip runs alone on the pool, as before batching existed.
Admission, single-flight and deadlines all sit above this module and are unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from services.common import tracing
from services.embedder.encoders.base import BatchEncoder, Encoder

#: A bucket's shortest clip is at least this fraction of its longest: at most ~20 % padding.
MIN_FILL = 0.8

Tensors = dict[str, np.ndarray]


def length_buckets(lengths: Sequence[int], min_fill: float = MIN_FILL) -> list[list[int]]:
    """Indices of `lengths` grouped longest first, each group within `min_fill` of its longest."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    buckets: list[list[int]] = []
    for index in order:
        if buckets and lengths[index] >= lengths[buckets[-1][0]] * min_fill:
            buckets[-1].append(index)
        else:
            buckets.append([index])
    return buckets


@dataclass
class _Waiting:
    samples: np.ndarray
    future: asyncio.Future[Tensors]
    arrived: float = field(default_factory=time.monotonic)
    #: Clips in the forward pass that produced this clip's answer (for its trace).
    batch_size: int = 1


class MicroBatcher:
    """`encode(samples)` for one encoder, batched with whatever else is waiting."""

    def __init__(
        self,
        encoder: Encoder,
        pool: Executor,
        *,
        window_s: float,
        max_batch: int,
        workers: int,
        on_pass: Callable[[int], None] | None = None,
    ) -> None:
        self.encoder = encoder
        self.batched = window_s > 0 and max_batch > 1 and isinstance(encoder, BatchEncoder)
        self._pool = pool
        self._window_s = window_s
        self._max_batch = max_batch
        self._workers = max(1, workers)
        #: Called on the event loop with the number of clips of every forward pass run.
        self._on_pass = on_pass
        self._waiting: list[_Waiting] = []
        self._collector: asyncio.Task[None] | None = None
        self._full: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def encode(self, samples: np.ndarray) -> Tensors:
        """The clip's tensors; the caller's current span (if traced) learns the size of its pass."""
        loop = asyncio.get_running_loop()
        if not self.batched:
            tensors = await loop.run_in_executor(self._pool, self.encoder.encode, samples)
            self._passed([1])
            tracing.annotate({tracing.BATCH_SIZE: 1})
            return tensors
        if self._full is None or self._slots is None:
            self._full, self._slots = asyncio.Event(), asyncio.Semaphore(self._workers)
        waiting = _Waiting(samples, loop.create_future())
        self._waiting.append(waiting)
        if len(self._waiting) >= self._max_batch:
            self._full.set()
        if self._collector is None or self._collector.done():
            self._collector = loop.create_task(self._collect())
        tensors = await waiting.future
        tracing.annotate({tracing.BATCH_SIZE: waiting.batch_size})
        return tensors

    def _passed(self, sizes: Sequence[int]) -> None:
        if self._on_pass is not None:
            for size in sizes:
                self._on_pass(size)

    async def _collect(self) -> None:
        """Form groups: wait out the first clip's window (or a full batch), then a free worker."""
        assert self._full is not None and self._slots is not None
        while self._waiting:
            left = self._waiting[0].arrived + self._window_s - time.monotonic()
            if left > 0 and len(self._waiting) < self._max_batch:
                try:
                    await asyncio.wait_for(self._full.wait(), left)
                except TimeoutError:
                    pass
            await self._slots.acquire()  # clips keep joining while every worker is busy
            group = self._waiting[: self._max_batch]
            del self._waiting[: len(group)]
            if len(self._waiting) < self._max_batch:
                self._full.clear()
            task = asyncio.get_running_loop().create_task(self._run(group))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, group: list[_Waiting]) -> None:
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        try:
            outcomes, sizes, passes = await loop.run_in_executor(
                self._pool, self._encode_group, [w.samples for w in group]
            )
        except BaseException as exc:  # the pool itself failed (shut down): nobody can be served
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        finally:
            self._slots.release()
        self._passed(sizes)
        for waiting, outcome, size in zip(group, outcomes, passes, strict=True):
            if waiting.future.done():  # its caller gave up
                continue
            waiting.batch_size = size
            if isinstance(outcome, BaseException):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)

    def _encode_group(self, clips: list[np.ndarray]) -> tuple[list[Tensors | Exception], list[int], list[int]]:
        """On a model worker: one pass per length bucket; a failed pass is retried clip by clip.

        Returns each clip's outcome, the size of every pass run, and each clip's pass size."""
        encoder = self.encoder
        assert isinstance(encoder, BatchEncoder)
        outcomes: list[Tensors | Exception] = [RuntimeError("not run")] * len(clips)
        sizes: list[int] = []
        passes = [1] * len(clips)
        for bucket in length_buckets([len(clip) for clip in clips]):
            if len(bucket) > 1:
                try:
                    results = encoder.encode_batch([clips[i] for i in bucket])
                except Exception:  # which clip is at fault is found below, one by one
                    pass
                else:
                    sizes.append(len(bucket))
                    for index, tensors in zip(bucket, results, strict=True):
                        outcomes[index] = tensors
                        passes[index] = len(bucket)
                    continue
            for index in bucket:
                try:
                    outcomes[index] = encoder.encode(clips[index])
                except Exception as exc:  # delivered to that clip's caller alone
                    outcomes[index] = exc
                sizes.append(1)
        return outcomes, sizes, passes
