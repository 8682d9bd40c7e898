"""Concurrent callers share one batch call; each gets its own answer or the failure."""

from __future__ import annotations

import asyncio

import pytest

from services.notifier.adapters.coalesce import Coalescer
from services.notifier.adapters.ratelimit import slots, waits


async def test_when_callers_submit_together_then_one_call_answers_each_in_order() -> None:
    calls: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        calls.append(items)
        return [2 * i for i in items]

    coalescer = Coalescer(double)

    answers = await asyncio.gather(*(coalescer.submit(i) for i in range(5)))

    assert answers == [0, 2, 4, 6, 8]
    assert calls == [[0, 1, 2, 3, 4]]


async def test_when_callers_arrive_during_a_call_then_they_go_in_the_next_one() -> None:
    calls: list[list[int]] = []
    gate = asyncio.Event()

    async def slow(items: list[int]) -> list[int]:
        calls.append(items)
        await gate.wait()
        return items

    coalescer = Coalescer(slow)
    first = asyncio.ensure_future(coalescer.submit(1))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(coalescer.submit(i)) for i in (2, 3)]
    await asyncio.sleep(0.01)
    gate.set()

    assert [await first, *[await f for f in later]] == [1, 2, 3]
    assert calls == [[1], [2, 3]]


async def test_when_the_batch_call_fails_then_every_caller_of_that_batch_sees_it() -> None:
    async def broken(items: list[int]) -> list[int]:
        raise ConnectionError("redis down")

    coalescer = Coalescer(broken)

    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)), return_exceptions=True)

    assert all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError):
        await coalescer.submit(9)  # and the next batch is tried afresh


def test_when_n_tokens_are_reserved_at_once_then_each_waits_as_if_reserved_in_turn() -> None:
    assert waits(available=2.0, n=4, rate=2.0) == [0.0, 0.0, 0.5, 1.0]
    assert waits(available=-1.0, n=2, rate=10.0) == pytest.approx([0.2, 0.3])


def test_when_the_wait_would_be_too_long_then_the_caller_is_told_when_without_a_token() -> None:
    told = slots(available=1.0, n=4, rate=2.0, taken=2)
    assert [s.reserved for s in told] == [True, True, False, False]
    assert [s.wait_s for s in told] == [0.0, 0.5, 1.0, 1.5]
