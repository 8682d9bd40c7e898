"""The processor's units of work on the event path: a batch's rows wait for Kafka to
have the batch's requests (a crash can no longer keep a row whose request was lost),
and a customer's second event in a batch starts from the first one's row."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from schemas.customer import ROUTING_HEADER
from schemas.notifications import SendNotification
from services.journey.domain.policy import Policy
from services.journey.messages import EventForwarded, FoldRequested, StateHandedOff
from services.journey.processor import REPORT_BACKLOG, Processor
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
AT_ONCE = [{"id": "send", "send": {"template": "thanks", "channels": ["line"]}}]


class CountingTable(dict[bytes, bytes]):
    """A table that counts writes (each one is a changelog record in the worker)."""

    writes = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def processor(emitter: Recorder) -> Processor:
    return Processor(
        CountingTable(),
        context_factory(scenario_factory(steps=AT_ONCE), policy=Policy(quiet_hours=None)),
        emitter,
        NoReports(),  # type: ignore[arg-type]
        partition_of=lambda _: 2,
        owned=lambda: {2},
        clock=EventClock(AT - 2 * HOUR),
    )


async def test_when_an_event_sends_at_once_then_its_row_waits_until_kafka_has_the_request() -> None:
    emitter = Recorder()
    journeys = processor(emitter)
    await journeys.on_customer_event("c1", followed(AT - HOUR), 2)  # LINE: reachable
    rows = dict(journeys.table)
    held: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    sent = asyncio.Event()

    async def hold(request: SendNotification) -> Awaitable[Any]:
        emitter.requests.append(request)
        sent.set()
        return held

    emitter.request = hold  # type: ignore[method-assign]
    handling = asyncio.create_task(journeys.on_customer_events([("c1", added(AT), 2)]))
    await asyncio.wait_for(sent.wait(), 5)

    assert dict(journeys.table) == rows  # the request is out, not acknowledged: no row yet
    held.set_result(None)
    await handling
    assert journeys.table[b"c1"] != rows[b"c1"]
    assert [r.step_id for r in emitter.requests] == ["send"]


async def test_when_a_request_is_refused_then_none_of_the_batch_rows_is_written() -> None:
    emitter = Recorder()
    journeys = processor(emitter)
    await journeys.on_customer_event("c1", followed(AT - HOUR), 2)
    rows = dict(journeys.table)

    async def refused(request: SendNotification) -> Awaitable[Any]:
        failed = asyncio.get_running_loop().create_future()
        failed.set_exception(RuntimeError("broker refused"))
        return failed

    emitter.request = refused  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):  # in the worker: fail-stop, the batch is read again
        await journeys.on_customer_events([("c2", followed(AT - HOUR), 2), ("c1", added(AT), 2)])

    assert dict(journeys.table) == rows  # neither c2's row nor c1's new one
    await journeys.on_customer_event("c3", followed(AT), 2)  # the next unit starts clean
    assert set(journeys.table) == {b"c1", b"c3"}


async def test_when_one_customer_has_two_events_in_a_batch_then_it_ends_as_one_by_one() -> None:
    one_by_one, batched = Recorder(), Recorder()
    alone, together = processor(one_by_one), processor(batched)
    events = [("c1", followed(AT - HOUR), 2), ("c1", added(AT), 2), ("c2", followed(AT), 2)]

    for event in events:
        await alone.on_customer_events([event])
    await together.on_customer_events(events)

    assert dict(together.table) == dict(alone.table)
    assert batched.requests == one_by_one.requests
    assert together.index.size() == alone.index.size()
    assert isinstance(together.table, CountingTable)
    assert isinstance(alone.table, CountingTable)
    assert (alone.table.writes, together.table.writes) == (3, 2)  # c1 written once


async def test_when_a_merge_overtakes_the_absorbed_ones_events_then_they_reach_the_survivor() -> (
    None
):
    """identity resolved her events to the absorbed customer before it merged; the fold
    request (control topic) is read before them (customer.events)."""
    emitter = Recorder()
    journeys = processor(emitter)
    fold = FoldRequested(customer_id="cookie-1", survivor="member-1", survivor_partition=3)

    await journeys.on_control(fold, 2)  # nothing known of cookie-1 yet
    await journeys.on_customer_event("cookie-1", followed(AT - HOUR), 2)

    forwarded = [m for _, _, m in emitter.sent if isinstance(m, EventForwarded)]
    assert [(m.customer_id, m.event.type) for m in forwarded] == [("member-1", "line_followed")]
    assert [m for _, _, m in emitter.sent if isinstance(m, StateHandedOff)] == []
    state, _ = journeys.load("cookie-1")
    assert state is not None
    assert state.absorbed_into == "member-1"


@pytest.mark.parametrize("kind", [{"type": "product_added"}, ["product_added"], 7, None, True])
def test_when_a_customer_event_has_a_type_that_is_no_string_then_it_goes_to_the_decoder(
    kind: Any,
) -> None:
    """The peek lets it through (the decoder dead-letters it) and never moves the clock;
    an object as type had stopped the worker: ``unhashable type: 'dict'``."""
    journeys = processor(Recorder())
    before = journeys.clock.now()
    later = datetime.fromtimestamp(AT + HOUR, UTC).isoformat()
    raw = orjson.dumps({"customer_id": "c1", "event": {"type": kind, "occurred_at": later}})

    assert journeys.wants(raw)
    assert journeys.clock.now() == before


def test_when_a_customer_event_has_a_type_no_journey_uses_then_it_is_skipped() -> None:
    journeys = processor(Recorder())
    later = datetime.fromtimestamp(AT + HOUR, UTC).isoformat()
    raw = orjson.dumps({"event": {"type": "page_viewed", "occurred_at": later}})

    assert not journeys.wants(raw)
    assert journeys.clock.now() == AT + HOUR  # every event moves the shop's clock


@pytest.mark.parametrize("kind", ["page_viewed", "product_added"])
def test_when_a_customer_event_has_routing_headers_then_they_alone_decide_and_move_the_clock(
    kind: str,
) -> None:
    """The body is not read (here: not even JSON); without usable headers it would be."""
    later = datetime.fromtimestamp(AT + HOUR, UTC).isoformat()
    micros = str(int(AT + HOUR) * 1_000_000).encode()
    headers = [(ROUTING_HEADER, b"%s e-1 %s" % (kind.encode(), micros))]
    body = orjson.dumps({"event": {"type": kind, "occurred_at": later}})
    by_headers, by_body = processor(Recorder()), processor(Recorder())

    assert by_headers.wants(b"{not json", headers) == by_body.wants(body)
    assert by_headers.wants(b"{not json", headers) == (kind == "product_added")
    assert by_headers.clock.now() == by_body.clock.now() == AT + HOUR
    iso = [(ROUTING_HEADER, b"%s e-1 %s" % (kind.encode(), later.encode()))]  # not epoch µs
    assert by_headers.wants(b"{not json", iso)  # so the body goes to the decoder


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_when_a_unit_ends_then_what_it_did_is_counted_and_a_failed_unit_counts_nothing() -> (
    None
):
    """Counts are kept per unit and reach the metrics once at its end; a unit that
    failed (its inputs are read again) counts nothing."""
    applied = ("kizuna_journey_events_total", {"handling": "applied"})
    requested = (
        "kizuna_journey_notifications_requested_total",
        {"journey": "test_journey", "channel": "line"},
    )
    entered = ("kizuna_journey_entered_total", {"journey": "test_journey", "variant": "default"})
    before = [_count(name, **labels) for name, labels in (applied, requested, entered)]
    emitter = Recorder()
    journeys = processor(emitter)
    batch = [("c1", followed(AT - HOUR), 2), ("c1", added(AT), 2), ("c2", added(AT), 2)]

    await journeys.on_customer_events(batch)

    after = [_count(name, **labels) for name, labels in (applied, requested, entered)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 1, 2]

    async def refused(request: SendNotification) -> Awaitable[Any]:
        failed = asyncio.get_running_loop().create_future()
        failed.set_exception(RuntimeError("broker refused"))
        return failed

    emitter.request = refused  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await journeys.on_customer_events([("c3", followed(AT - HOUR), 2), ("c3", added(AT), 2)])
    assert [_count(name, **labels) for name, labels in (applied, requested, entered)] == after


class HeldReports:
    """Reports whose flush waits until released (Redis busy), or fails with ``fail``."""

    def __init__(self) -> None:
        self.facts, self.flushes, self.fail = 0, 0, None
        self.release = asyncio.Event()

    def stage(self, customer_id: str, output: Any) -> None:
        self.facts += 1

    def pending(self) -> int:
        return self.facts

    async def flush(self) -> int:
        self.flushes += 1
        taken, self.facts = self.facts, 0
        await self.release.wait()
        if self.fail is not None:
            self.facts += taken  # kept for the next flush, as JourneyReports does
            raise self.fail
        return taken


def reporting(reports: HeldReports) -> Processor:
    return Processor(
        CountingTable(),
        context_factory(scenario_factory(steps=AT_ONCE), policy=Policy(quiet_hours=None)),
        Recorder(),
        reports,  # type: ignore[arg-type]
        partition_of=lambda _: 2,
        owned=lambda: {2},
        clock=EventClock(AT - 2 * HOUR),
        flush_batch=2,
    )


async def test_when_reports_are_due_then_they_go_to_redis_while_the_next_batch_is_handled() -> None:
    reports = HeldReports()
    journeys = reporting(reports)
    reports.facts = 2

    await asyncio.wait_for(journeys.maybe_flush(), 1)  # not waiting for Redis
    await asyncio.sleep(0)  # the flush took the two and waits for Redis
    reports.facts += 3
    await asyncio.wait_for(journeys.maybe_flush(), 1)  # one flush at a time

    assert (reports.flushes, reports.pending()) == (1, 3)
    reports.release.set()
    await journeys.flush_reports()
    assert (reports.flushes, reports.pending()) == (2, 0)


async def test_when_redis_falls_far_behind_then_the_handler_waits_for_it() -> None:
    reports = HeldReports()
    journeys = reporting(reports)
    reports.facts = 2
    await journeys.maybe_flush()
    await asyncio.sleep(0)  # the flush took the two and waits for Redis
    reports.facts = 2 * REPORT_BACKLOG

    waiting = asyncio.ensure_future(journeys.maybe_flush())
    await asyncio.sleep(0.05)

    assert not waiting.done()
    reports.release.set()
    await asyncio.wait_for(waiting, 1)
    assert (reports.flushes, reports.pending()) == (2, 0)


async def test_when_redis_is_down_then_a_background_flush_keeps_the_facts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reports = HeldReports()
    reports.fail = RedisConnectionError("connection refused")  # type: ignore[assignment]
    reports.release.set()
    journeys = reporting(reports)
    reports.facts = 3

    await journeys.maybe_flush()
    await asyncio.sleep(0.01)  # the background flush ran and failed

    assert reports.pending() == 3
    assert "Redis unavailable" in caplog.text
