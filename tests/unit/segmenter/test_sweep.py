"""The processor's time sweep: due customers go out as batched ticks to their own
partition, and a batch re-scores each of its customers once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
from pydantic import BaseModel

from schemas.segments import SegmentChanged
from services.segmenter import metrics
from services.segmenter import processor as processor_module
from services.segmenter.domain.standing import Policy
from services.segmenter.messages import TICKS_PER_MESSAGE, TicksDue
from services.segmenter.processor import Processor
from tests.unit.segmenter.builders import cancel, on_day, order, page, profile, receipt, refund, ts


class Recorder:
    """Records what the processor sends. Changes are acknowledged at once, or, once
    :meth:`hold` was called, only when :meth:`release` is."""

    def __init__(self) -> None:
        self.changes: list[SegmentChanged] = []
        self.sent: list[tuple[int, str, BaseModel]] = []
        self.holding = False
        self.held: list[asyncio.Future[None]] = []
        self.all_held = asyncio.Event()
        self.expected = 0

    async def segment_changed(self, change: SegmentChanged) -> Awaitable[Any]:
        self.changes.append(change)
        delivery = asyncio.get_running_loop().create_future()
        if not self.holding:
            delivery.set_result(None)
            return delivery
        self.held.append(delivery)
        if len(self.held) == self.expected:
            self.all_held.set()
        return delivery

    def hold(self, expected: int) -> None:
        self.holding, self.expected = True, expected

    def release(self) -> None:
        self.holding = False
        for delivery in self.held:
            delivery.set_result(None)

    async def control(
        self, partition: int, key: str, message: BaseModel, *, wait: bool = False
    ) -> None:
        self.sent.append((partition, key, message))


class NoViews:
    def stage(self, customer_id: str, view: dict[str, Any]) -> None: ...
    def stage_fields(self, customer_id: str, fields: dict[str, Any]) -> None: ...
    def stage_absorbed(self, customer_id: str, survivor: str) -> None: ...
    async def flush(self) -> int:
        return 0


async def first_buyers(count: int) -> tuple[Processor, Recorder, list[str]]:
    """``count`` customers on partition 1, each with one order on day 0."""
    emitter = Recorder()
    processor = Processor(
        {}, Policy(), emitter, NoViews(), partition_of=lambda _: 1, owned=lambda: {1}
    )
    processor.clock.pinned = ts(on_day(0))
    customers = [f"c{n}" for n in range(count)]
    for n, customer in enumerate(customers):
        await processor.on_customer_event(customer, order(f"o{n}", 5_000, on_day(0)), 1)
    emitter.changes.clear()
    return processor, emitter, customers


async def test_when_many_are_due_then_they_go_out_in_batches_to_their_partition() -> None:
    processor, emitter, customers = await first_buyers(2 * TICKS_PER_MESSAGE + 1)
    processor.clock.pinned = ts(on_day(400))

    sent = await processor.sweep()

    assert sent == len(customers)
    assert [(p, len(m.customer_ids)) for p, _, m in emitter.sent] == [  # type: ignore[attr-defined]
        (1, TICKS_PER_MESSAGE),
        (1, TICKS_PER_MESSAGE),
        (1, 1),
    ]
    ticked = [c for _, _, m in emitter.sent for c in m.customer_ids]  # type: ignore[attr-defined]
    assert sorted(ticked) == sorted(customers)
    assert await processor.sweep() == 0  # popped: not sent again


async def handle_ticks(processor: Processor, emitter: Recorder, in_flight: list[int]) -> None:
    """The worker reading its control topic: each tick message sent, handled in turn
    (``in_flight``: how many ticks were out when each one was read)."""
    handled = 0
    while True:
        await asyncio.sleep(0)
        for partition, _, ticks in emitter.sent[handled:]:
            in_flight.append(processor.ticks_in_flight)
            await processor.on_control(ticks, partition)  # type: ignore[arg-type]
            handled += 1


async def catching_up(processor: Processor, emitter: Recorder, in_flight: list[int]) -> int:
    reading = asyncio.create_task(handle_ticks(processor, emitter, in_flight))
    try:
        return await asyncio.wait_for(processor.catch_up(patience=5), 10)
    finally:
        reading.cancel()


async def test_when_more_are_due_than_a_round_takes_then_the_next_goes_once_ticks_are_handled() -> (
    None
):
    processor, emitter, customers = await first_buyers(25)
    processor.sweep_batch = 10
    processor.clock.pinned = ts(on_day(400))
    in_flight: list[int] = []

    sent = await catching_up(processor, emitter, in_flight)

    assert sent == 25  # three rounds in one timer tick: 10, 10, 5
    assert max(in_flight) <= 10  # never more than one round in flight
    ticked = {c for _, _, m in emitter.sent for c in m.customer_ids}  # type: ignore[attr-defined]
    assert ticked == set(customers)


async def test_when_nobody_handles_the_ticks_then_catching_up_stops_after_its_patience() -> None:
    processor, _, _ = await first_buyers(25)
    processor.sweep_batch = 10
    processor.clock.pinned = ts(on_day(400))

    sent = await processor.catch_up(patience=0.05)

    assert sent == 10  # one round; the rest waits for the next timer tick
    assert processor.ticks_in_flight == 10
    assert metrics.TICKS_IN_FLIGHT._value.get() == 10  # what the dashboard shows
    assert await processor.catch_up(patience=0.05) == 10


async def test_when_partitions_are_reassigned_then_ticks_in_flight_are_forgotten() -> None:
    processor, emitter, customers = await first_buyers(25)
    processor.sweep_batch = 10
    processor.clock.pinned = ts(on_day(400))
    assert await processor.catch_up(patience=0.05) == 10  # its ticks never come back
    await processor.on_control(TicksDue(customer_ids=customers[:5]), 7)  # not its partition

    assert processor.ticks_in_flight == 10
    processor.rebuild()  # after a rebalance: another worker may handle them now
    assert processor.ticks_in_flight == 0
    emitter.sent.clear()
    # all but the five handled are due (the lost ten again) and go out in this one call
    assert await catching_up(processor, emitter, []) == 20


async def test_when_a_batch_of_ticks_arrives_then_each_customer_is_rescored_once() -> None:
    processor, emitter, customers = await first_buyers(3)
    processor.clock.pinned = ts(on_day(400))

    await processor.on_control(TicksDue(customer_ids=customers), 1)

    moved = {(c.customer_id, c.dimension) for c in emitter.changes if c.reason == "time"}
    assert moved == {(c, "rfm") for c in customers} | {(c, "cpm") for c in customers}
    assert len(emitter.changes) == len(moved)  # once each
    assert all(processor.load(c).standing.evaluated_day for c in customers)  # type: ignore[union-attr]


async def test_when_ticks_rescore_then_no_row_is_written_before_kafka_has_the_changes() -> None:
    processor, emitter, customers = await first_buyers(3)
    processor.clock.pinned = ts(on_day(400))
    emitter.hold(2 * len(customers))  # an rfm and a cpm change each
    rows = dict(processor.table)
    ticking = asyncio.create_task(processor.on_control(TicksDue(customer_ids=customers), 1))
    await asyncio.wait_for(emitter.all_held.wait(), 5)

    assert dict(processor.table) == rows  # changes sent, none acknowledged: rows as before
    emitter.release()
    await ticking
    assert all(processor.table[c.encode()] != rows[c.encode()] for c in customers)


async def test_when_an_event_comes_while_ticks_wait_for_kafka_then_it_applies_after() -> None:
    processor, emitter, customers = await first_buyers(3)
    processor.clock.pinned = ts(on_day(400))
    emitter.hold(2 * len(customers))  # an rfm and a cpm change each
    ticking = asyncio.create_task(processor.on_control(TicksDue(customer_ids=customers), 1))
    await asyncio.wait_for(emitter.all_held.wait(), 5)
    buying = asyncio.create_task(
        processor.on_customer_event(customers[0], order("again", 7_000, on_day(400)), 1)
    )
    await asyncio.sleep(0.01)
    emitter.release()
    await asyncio.gather(ticking, buying)

    state = processor.load(customers[0])
    assert state is not None
    assert set(state.facts.orders) == {"o0", "again"}  # neither step overwrote the other
    assert state.standing.evaluated_day == processor.policy.calendar.day(ts(on_day(400)))


class ViewStore:
    """The profile views as Redis ends up holding them: a whole view replaces the
    customer's hash, staged fields update it."""

    def __init__(self, views: dict[str, dict[str, Any]] | None = None) -> None:
        self.views = {c: dict(view) for c, view in (views or {}).items()}

    def stage(self, customer_id: str, view: dict[str, Any]) -> None:
        self.views[customer_id] = dict(view)

    def stage_fields(self, customer_id: str, fields: dict[str, Any]) -> None:
        self.views.setdefault(customer_id, {}).update(fields)

    def stage_absorbed(self, customer_id: str, survivor: str) -> None:
        self.views[customer_id] = {"customer_id": customer_id, "absorbed_into": survivor}

    async def flush(self) -> int:
        return 0


async def test_when_nobody_decoded_the_due_customers_then_ticks_end_as_the_full_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    histories = {
        "c1": [order("o1", 5_000, on_day(0)), order("o2", 30_000, on_day(20))],
        "c2": [receipt("s1", "r1", 80_000, on_day(3)), refund("r1-x", 1_000, on_day(4))],
        "c3": [order("o3", 2_000, on_day(1)), cancel("o3", on_day(2)), page(on_day(5))],
        "c4": [order("o4", 9_000, on_day(0)), profile(on_day(1), channel="line")],
    }
    warm_views = ViewStore()
    warm = Processor(
        {}, Policy(), Recorder(), warm_views, partition_of=lambda _: 1, owned=lambda: {1}
    )
    warm.clock.pinned = ts(on_day(30))
    for customer, history in histories.items():
        for event in history:
            await warm.on_customer_event(customer, event, 1)
    await warm.flush_views()
    cold_views = ViewStore(warm_views.views)  # what Redis holds when the cold worker starts
    cold = Processor(
        dict(warm.table),
        Policy(),
        Recorder(),
        cold_views,
        partition_of=lambda _: 1,
        owned=lambda: {1},
        state_cache=0,  # nothing kept decoded: every due customer takes the stored path
    )
    cold.clock.pinned = ts(on_day(30))
    cold.rebuild()
    await cold.flush_views()  # the rebuilt views (the same) are out: nobody waits for one
    decoded: list[bytes] = []
    monkeypatch.setattr(processor_module, "decode_state", lambda raw: decoded.append(raw))

    for worker in (warm, cold):
        worker.clock.pinned = ts(on_day(400))
        await worker.sweep()
        for partition, _, ticks in worker.emitter.sent:  # type: ignore[attr-defined]
            await worker.on_control(ticks, partition)
        await worker.flush_views()

    warm_changes = [c for c in warm.emitter.changes if c.reason == "time"]  # type: ignore[attr-defined]
    assert len(warm_changes) >= 4
    assert cold.emitter.changes == warm_changes  # type: ignore[attr-defined]
    assert cold.table == warm.table
    assert cold_views.views == warm_views.views
    assert cold.index.size() == warm.index.size()
    assert decoded == []  # the warm worker had every state, the cold one read stored parts


async def test_when_a_row_a_tick_rewrote_is_loaded_before_it_is_written_then_it_is_decoded() -> (
    None
):
    processor, emitter, customers = await first_buyers(1)
    cold = Processor(
        dict(processor.table),
        Policy(),
        emitter,
        NoViews(),
        partition_of=lambda _: 1,
        owned=lambda: {1},
        state_cache=0,
    )
    cold.clock.pinned = ts(on_day(400))
    emitter.hold(2)  # an rfm and a cpm change
    ticking = asyncio.create_task(cold.on_control(TicksDue(customer_ids=customers), 1))
    await asyncio.wait_for(emitter.all_held.wait(), 5)

    staged = cold.load(customers[0])  # staged as its row alone, not yet in the table
    emitter.release()
    await ticking
    assert staged is not None
    assert staged.standing.evaluated_day == cold.policy.calendar.day(ts(on_day(400)))
    assert staged == cold.load(customers[0])


# -- the event path: units of work over a batch of customer events -------------------


async def test_when_an_order_moves_a_segment_then_its_row_waits_until_kafka_has_the_change() -> (
    None
):
    processor, emitter, customers = await first_buyers(1)
    emitter.hold(1)  # the second order: 初回客 -> よちよち客 (rfm); cpm may move too
    rows = dict(processor.table)
    buying = asyncio.create_task(
        processor.on_customer_events([(customers[0], order("o-2", 5_000, on_day(0)), 1)])
    )
    await asyncio.wait_for(emitter.all_held.wait(), 5)

    assert dict(processor.table) == rows  # the change is out, not acknowledged: no row yet
    emitter.release()
    await buying
    assert processor.table[customers[0].encode()] != rows[customers[0].encode()]


async def test_when_a_batch_holds_a_customer_twice_then_it_ends_as_one_by_one() -> None:
    one_by_one, _, _ = await first_buyers(0)
    batched, _, _ = await first_buyers(0)
    events = [
        ("c1", order("o-1", 5_000, on_day(0)), 1),
        ("c1", order("o-2", 8_000, on_day(0)), 1),
        ("c2", order("o-3", 3_000, on_day(0)), 1),
    ]

    for event in events:
        await one_by_one.on_customer_events([event])
    await batched.on_customer_events(events)

    assert dict(batched.table) == dict(one_by_one.table)
    assert [c.model_dump(exclude={"occurred_at"}) for c in batched.emitter.changes] == [  # type: ignore[attr-defined]
        c.model_dump(exclude={"occurred_at"})
        for c in one_by_one.emitter.changes  # type: ignore[attr-defined]
    ]
