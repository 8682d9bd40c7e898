"""The processor keeps the states it decoded or wrote (a customer's next event does not
decode her row again). The engine changes a loaded state in place, so a kept state must
always be the one its row decodes to: the same stream through a processor that keeps
states and one that keeps none leaves the same rows and sends the same messages."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from schemas.examples import T0, example_stream
from schemas.journeys import JourneyConverted
from services.journey import processor as processor_module
from services.journey.messages import TicksDue
from services.journey.processor import Processor
from tests.unit.journey.builders import (
    EventClock,
    NoReports,
    Recorder,
    context_factory,
    delivered,
    shipped,
)


class Converting(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.conversions: list[JourneyConverted] = []

    async def conversion(self, conversion: JourneyConverted) -> Awaitable[Any]:
        self.conversions.append(conversion)
        return delivered()


def processor(cache: int) -> tuple[Processor, Converting]:
    emitter = Converting()
    made = Processor(
        {},
        context_factory(*shipped().values()),
        emitter,
        NoReports(),  # type: ignore[arg-type]
        partition_of=lambda _: 0,
        owned=lambda: {0},
        clock=EventClock((T0 - timedelta(days=1)).timestamp()),
        state_cache=cache,
    )
    return made, emitter


async def run(journeys: Processor, events: int, customers: int, batch: int) -> int:
    """The events in units of ``batch``, the timers due firing now and then; how many
    customers' timers fired."""
    fired = 0
    stream = [
        (f"c{n % customers}", event, 0) for n, event in enumerate(example_stream(events, seed=3))
    ]
    for start in range(0, len(stream), batch):
        units = stream[start : start + batch]
        for _, event, _ in units:
            journeys.clock.observe(event.occurred_at.timestamp())
        await journeys.on_customer_events(units)
        if start % (batch * 20) == 0:  # now and then, the timers due by then fire
            fired += await fire_due(journeys)
    journeys.clock.observe(journeys.clock.now() + 30 * 86_400)  # and all of them, later
    return fired + await fire_due(journeys)


async def fire_due(journeys: Processor) -> int:
    emitter = journeys.emitter
    assert isinstance(emitter, Converting)
    await journeys.sweep()
    ticks, emitter.sent = [m for _, _, m in emitter.sent if isinstance(m, TicksDue)], []
    for message in ticks:
        await journeys.on_control(message, 0)
    return sum(len(message.customer_ids) for message in ticks)


async def test_when_states_are_kept_then_rows_and_messages_are_those_of_decoding_each_time() -> (
    None
):
    keeping, kept_out = processor(cache=50)  # fewer than the customers: entries also leave
    decoding, decoded_out = processor(cache=0)
    fired = [
        await run(journeys, events=4_000, customers=80, batch=37)
        for journeys in (keeping, decoding)
    ]

    assert fired[0] == fired[1] > 80  # timers fired, mid-stream and after it
    assert len(keeping.decoded) == 50
    assert len(decoding.decoded) == 0
    assert keeping.table == decoding.table
    assert len(keeping.table) > 40
    assert kept_out.requests == decoded_out.requests
    assert kept_out.conversions == decoded_out.conversions
    assert kept_out.requests  # the stream did send something


async def test_when_a_state_is_kept_then_the_next_event_does_not_decode_the_row(
    monkeypatch: Any,
) -> None:
    journeys, _ = processor(cache=1_000)
    calls = []
    real = processor_module.decode

    def counting(raw: bytes) -> Any:
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(processor_module, "decode", counting)
    await run(journeys, events=2_000, customers=40, batch=25)

    assert len(journeys.table) > 20
    assert calls == []  # every row read back was one this worker wrote or kept
