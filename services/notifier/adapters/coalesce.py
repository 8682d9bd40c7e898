"""Group commit: many concurrent callers, one round trip.

A worker has up to ``concurrency`` deliveries in flight, each wanting the same kind of
Redis call at nearly the same moment (claim an id, take a rate-limit token, finish an
id). :class:`Coalescer` queues those calls and sends everything that is waiting as one
batch call; each caller gets back only its own answer and resumes only once the batch
call has returned. So for each caller the order of effects is exactly as if it had
made its own call ("finish is durable before the outcome is emitted" still holds),
while the worker pays one round trip per batch instead of one per message.

At most one batch call is in flight per coalescer, so calls for the same key are
applied in the order they were submitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchCall = Callable[[list[T]], Awaitable[Sequence[R]]]


class Coalescer(Generic[T, R]):
    def __init__(self, call: BatchCall[T, R], max_batch: int = 512) -> None:
        self._call = call
        self._max = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """This item's answer, once the batch it went out with has returned."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let callers woken in the same loop turn join this batch
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max], self._waiting[self._max :]
            try:
                answers = await self._call([item for item, _ in batch])
            except asyncio.CancelledError:  # worker shutting down: nobody waits forever
                for _, future in batch + self._waiting:
                    future.cancel()
                self._waiting = []
                raise
            except Exception as err:  # every caller of this batch sees the failure as its own
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
