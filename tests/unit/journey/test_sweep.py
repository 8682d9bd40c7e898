"""The processor's timer sweep: due customers go out as batched ticks to their own
partition, and a batch fires each of its customers' due step once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from schemas.notifications import SendNotification
from services.journey.domain.policy import Policy
from services.journey.messages import TICKS_PER_MESSAGE, TicksDue
from services.journey.processor import Processor
from tests.unit.journey.builders import (
    HOUR,
    EventClock,
    NoReports,
    Recorder,
    added,
    context_factory,
    followed,
    jst,
    scenario_factory,
)

AT = jst(2030, 6, 3, 10, 0)  # a Monday morning: no quiet hours in the way


async def carts(count: int) -> tuple[Processor, Recorder, list[str]]:
    """``count`` customers on partition 2, each with a cart left at ``AT``."""
    emitter = Recorder()
    clock = EventClock(AT - 2 * HOUR)
    processor = Processor(
        {},
        context_factory(scenario_factory(), policy=Policy(quiet_hours=None)),
        emitter,
        NoReports(),  # type: ignore[arg-type]
        partition_of=lambda _: 2,
        owned=lambda: {2},
        clock=clock,
    )
    customers = [f"c{n}" for n in range(count)]
    for customer in customers:
        await processor.on_customer_event(customer, followed(AT - HOUR), 2)
        await processor.on_customer_event(customer, added(AT), 2)
    clock.observe(AT + HOUR + 60)
    return processor, emitter, customers


async def test_when_many_timers_are_due_then_they_go_out_in_batches_to_their_partition() -> None:
    processor, emitter, customers = await carts(TICKS_PER_MESSAGE + 2)

    sent = await processor.sweep()

    assert sent == len(customers)
    batches = [(p, m) for p, _, m in emitter.sent if isinstance(m, TicksDue)]
    assert [(p, len(m.customer_ids)) for p, m in batches] == [(2, TICKS_PER_MESSAGE), (2, 2)]
    assert sorted(c for _, m in batches for c in m.customer_ids) == sorted(customers)
    assert await processor.sweep() == 0  # popped: not sent again


async def test_when_a_batch_of_ticks_arrives_then_each_due_step_fires_once() -> None:
    processor, emitter, customers = await carts(3)

    await processor.on_control(TicksDue(customer_ids=customers, due=AT + HOUR + 60), 2)
    await processor.on_control(TicksDue(customer_ids=customers, due=AT + HOUR + 60), 2)

    assert sorted(r.customer_id for r in emitter.requests) == customers
    assert {r.step_id for r in emitter.requests} == {"send"}


async def test_when_ticks_fire_then_no_row_is_written_before_kafka_has_the_requests() -> None:
    processor, emitter, customers = await carts(3)
    pending: list[asyncio.Future[None]] = []
    all_sent = asyncio.Event()

    async def held(request: SendNotification) -> Awaitable[Any]:
        emitter.requests.append(request)
        pending.append(asyncio.get_running_loop().create_future())
        if len(pending) == len(customers):
            all_sent.set()
        return pending[-1]

    emitter.request = held  # type: ignore[method-assign]
    rows = dict(processor.table)
    firing = asyncio.create_task(
        processor.on_control(TicksDue(customer_ids=customers, due=AT + HOUR + 60), 2)
    )
    await asyncio.wait_for(all_sent.wait(), 5)

    assert dict(processor.table) == rows  # requests sent, none acknowledged: rows as before
    for delivery in pending:
        delivery.set_result(None)
    await firing
    assert all(processor.table[c.encode()] != rows[c.encode()] for c in customers)
