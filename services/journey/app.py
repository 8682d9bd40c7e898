"""The journey worker: topics, the journey table, agents, timers, pages — wiring only.

customer.events ────────┐                        ┌─▶ journey.conversions
segment.changes ────────┤                        ├─▶ notifications.requested
notifications.outcomes ─┼─▶ Processor ─▶ table ──┤─▶ Redis reports + why-skipped
identity.changes ───────┤   (engine steps)       └─▶ journey.control (ticks, hand-offs)
journey.control ────────┘
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import faust
from pydantic import BaseModel

from runtime.app import create_app
from runtime.batches import process_batches, skip_tick_on_outage, stop_unless_delivered
from runtime.consumer import table_stage
from runtime.deadletter import FaustDeadLetters
from runtime.intake import count_consumed, decode_batch, decode_event, decoded, validated
from runtime.producer import AsyncProducer
from runtime.redis import REDIS_OUTAGE, create_redis
from runtime.settings import Settings, table_options
from runtime.store import stage_table
from schemas.codec import encode
from schemas.journeys import JourneyConverted
from schemas.notifications import SendNotification
from schemas.topics import (
    CUSTOMER_EVENTS,
    IDENTITY_CHANGES,
    JOURNEY_CONVERSIONS,
    NOTIFICATIONS_OUTCOMES,
    NOTIFICATIONS_REQUESTED,
    SEGMENT_CHANGES,
)
from services.journey import metrics
from services.journey.adapters.partitioning import partition_function
from services.journey.adapters.reports import JourneyReports
from services.journey.adapters.scenarios import ScenarioArchive, load_scenarios, load_stores
from services.journey.domain.catalogue import Catalogue, Context
from services.journey.messages import CONTROL_ADAPTER, USED_CUSTOMER_EVENT, control_spec
from services.journey.processor import JourneyClock, Processor
from services.journey.settings import JourneySettings
from services.journey.web import add_pages

SERVICE = "journey"
TABLE = "journeys"
REQUEST_SENT = stop_unless_delivered(SERVICE, "notification request")
CONVERSION_SENT = stop_unless_delivered(SERVICE, "conversion")


class FaustEmitter:
    """Requests are not awaited one by one: faust flushes its producer before it commits
    an offset, and a request Kafka refused stops the worker before that commit, so the
    event is processed again after the restart (same notification_id). Each send returns
    its delivery, for the callers that must see it acknowledged before they write a row."""

    def __init__(self, requests: Any, conversions: Any, control: Any) -> None:
        self._requests, self._conversions, self._control = requests, conversions, control

    async def request(self, request: SendNotification) -> Awaitable[Any]:
        sent = await self._requests.send(key=request.customer_id.encode(), value=encode(request))
        sent.add_done_callback(REQUEST_SENT)
        return cast(Awaitable[Any], sent)

    async def conversion(self, conversion: JourneyConverted) -> Awaitable[Any]:
        key = conversion.customer_id.encode()
        sent = await self._conversions.send(key=key, value=encode(conversion))
        sent.add_done_callback(CONVERSION_SENT)
        return cast(Awaitable[Any], sent)

    async def control(
        self, partition: int, key: str, message: BaseModel, *, wait: bool = False
    ) -> None:
        sent = await self._control.send(
            key=key.encode(), value=encode(message), partition=partition
        )
        if wait:
            await sent


class KafkaEmitter:
    """The batch intake's emitter: requests, conversions, control messages and (through
    the table) changelog records on one confluent-kafka producer."""

    def __init__(self, producer: AsyncProducer, namespace: str, control_topic: str) -> None:
        self.producer = producer
        self._requests = NOTIFICATIONS_REQUESTED.name(namespace)
        self._conversions = JOURNEY_CONVERSIONS.name(namespace)
        self._control = control_topic

    async def request(self, request: SendNotification) -> Awaitable[Any]:
        self.producer.produce(self._requests, request.customer_id.encode(), encode(request))
        return self.producer.acks()

    async def conversion(self, conversion: JourneyConverted) -> Awaitable[Any]:
        key = conversion.customer_id.encode()
        self.producer.produce(self._conversions, key, encode(conversion))
        return self.producer.acks()

    async def control(
        self, partition: int, key: str, message: BaseModel, *, wait: bool = False
    ) -> None:
        self.producer.produce(self._control, key.encode(), encode(message), partition=partition)
        if wait:
            await self.producer.acks()


async def load_context(settings: Settings, journey: JourneySettings, redis: Any) -> Context:
    """The scenarios on disk plus every older version people may still be inside."""
    scenarios = load_scenarios(journey.scenarios_dir)
    archived = await ScenarioArchive(redis, settings.namespace).register(scenarios)
    stores = load_stores(journey.stores_file)
    return Context.of(Catalogue.of(scenarios, archived), journey.policy(), stores)


class Handlers:
    """What each input topic's records do, for either intake (faust events or batch
    records: both carry ``.message``)."""

    def __init__(self, processor: Processor, dead_letters: Any, limit: int) -> None:
        self.processor, self.dead_letters, self.limit = processor, dead_letters, limit

    async def customer_events(self, events: Sequence[Any]) -> None:
        processor, skipped = self.processor, 0
        consumed: dict[str, int] = {}  # read inline, per topic: counted once
        validate = USED_CUSTOMER_EVENT.validate_json
        try:
            async with processor.unit():
                for event in events:  # in order: each one moves the clock at its own turn
                    message = event.message
                    raw = message.value
                    if not processor.wants(raw or b"", message.headers):
                        skipped += 1
                        continue
                    value = validated(raw, validate, self.limit)
                    if value is None:  # decoded again, to be dead-lettered with its reason
                        got = await decode_event(
                            event,
                            USED_CUSTOMER_EVENT,
                            self.dead_letters,
                            service=SERVICE,
                            max_bytes=self.limit,
                        )
                        if got is None:
                            continue
                        value = got.value
                    else:
                        consumed[message.topic] = consumed.get(message.topic, 0) + 1
                    await processor.customer_event(
                        value.customer_id, value.event, message.partition
                    )
                if skipped:
                    processor.tally(metrics.EVENTS_SKIPPED, skipped)
        finally:
            count_consumed(SERVICE, consumed)
        await processor.maybe_flush()

    async def segment_changes(self, events: Sequence[Any]) -> None:
        got = await self._decode(events, SEGMENT_CHANGES.adapter)
        await self.processor.on_segment_changes([(g.value, g.partition) for g in got])

    async def outcomes(self, events: Sequence[Any]) -> None:
        got = await self._decode(events, NOTIFICATIONS_OUTCOMES.adapter)
        await self.processor.on_outcomes([(g.value, g.partition) for g in got])

    async def identity_changes(self, events: Sequence[Any]) -> None:
        for got in await self._decode(events, IDENTITY_CHANGES.adapter):
            await self.processor.on_identity_change(got.value)

    async def control(self, events: Sequence[Any]) -> None:
        for got in await self._decode(events, CONTROL_ADAPTER):
            await self.processor.on_control(got.value, got.partition)
        await self.processor.maybe_flush()

    async def _decode(self, events: Sequence[Any], adapter: Any) -> list[Any]:
        return await decode_batch(
            events, adapter, self.dead_letters, service=SERVICE, max_bytes=self.limit
        )


def _processor(
    settings: Settings,
    journey: JourneySettings,
    ctx: Context,
    table: Any,
    emitter: Any,
    reports: JourneyReports,
    owned: Callable[[], set[int]],
) -> Processor:
    return Processor(
        table,
        ctx,
        emitter,
        reports,
        partition_of=partition_function(settings.partitions or CUSTOMER_EVENTS.partitions),
        owned=owned,
        clock=JourneyClock(journey.clock_skew_seconds),
        sweep_batch=journey.sweep_batch,
        flush_batch=journey.report_flush_batch,
    )


def build(
    settings: Settings, journey: JourneySettings, ctx: Context
) -> tuple[faust.App, Processor]:
    """The worker, reading its inputs as ``journey.intake`` says (batches or faust)."""
    if journey.intake == "batch":
        return build_batch(settings, journey, ctx)
    return build_faust(settings, journey, ctx)


def build_batch(
    settings: Settings, journey: JourneySettings, ctx: Context
) -> tuple[faust.App, Processor]:
    """Inputs read in batches with confluent-kafka (runtime.consumer), the journey rows
    in a :class:`ChangelogTable`: no faust agent or table on the per-message path."""
    app = create_app(SERVICE, settings)
    ns, partitions = settings.namespace, settings.partitions or CUSTOMER_EVENTS.partitions
    control_name = control_spec(partitions).name(ns)
    producer = AsyncProducer(settings.kafka, **{"linger.ms": 5})
    table = stage_table(settings, SERVICE, TABLE, partitions, producer)
    redis = create_redis(settings)
    reports = JourneyReports(redis, ns, journey.why_keep)
    emitter = KafkaEmitter(producer, ns, control_name)
    processor = _processor(
        settings, journey, ctx, table, emitter, reports, lambda: table.partitions
    )
    on = Handlers(processor, FaustDeadLetters(app, ns), settings.max_message_bytes)
    handlers = {  # customer.events first: the table holds its partitions
        CUSTOMER_EVENTS.name(ns): on.customer_events,
        SEGMENT_CHANGES.name(ns): on.segment_changes,
        NOTIFICATIONS_OUTCOMES.name(ns): on.outcomes,
        IDENTITY_CHANGES.name(ns): on.identity_changes,
        control_name: on.control,
    }

    async def rebuilt() -> None:
        processor.rebuild()

    table_stage(
        app,
        settings,
        SERVICE,
        table,
        handlers,
        max_batch=journey.input_batch,
        within_seconds=journey.input_batch_within_seconds,
        after_rebalance=rebuilt,
    )

    _timers_and_pages(app, journey, ctx, processor, reports)
    return app, processor


def build_faust(
    settings: Settings, journey: JourneySettings, ctx: Context
) -> tuple[faust.App, Processor]:
    app = create_app(SERVICE, settings, producer_linger=0.005)
    ns, partitions = settings.namespace, settings.partitions or CUSTOMER_EVENTS.partitions

    def topic(name: str, **options: Any) -> Any:
        return app.topic(name, key_serializer="raw", value_serializer="raw", **options)

    events_topic = topic(CUSTOMER_EVENTS.name(ns))
    control_topic = topic(control_spec(partitions).name(ns), partitions=partitions)
    rows = app.Table(
        TABLE,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        options=table_options(settings),
    )
    redis = create_redis(settings)
    reports = JourneyReports(redis, ns, journey.why_keep)
    emitter = FaustEmitter(
        topic(NOTIFICATIONS_REQUESTED.name(ns)), topic(JOURNEY_CONVERSIONS.name(ns)), control_topic
    )
    processor = _processor(
        settings,
        journey,
        ctx,
        rows,
        emitter,
        reports,
        lambda: {
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == events_topic.get_topic_name()
        },
    )
    on = Handlers(processor, FaustDeadLetters(app, ns), settings.max_message_bytes)

    # Customer events, segment changes and outcomes are handled in units of work of up
    # to ``input_batch`` (see the processor): faust acknowledges a batch after it ran.
    def in_units(handle: Callable[[Sequence[Any]], Awaitable[None]]) -> Callable[[Any], Any]:
        async def agent(stream: Any) -> None:
            await process_batches(
                stream,
                handle,
                service=SERVICE,
                max_batch=journey.input_batch,
                within_seconds=journey.input_batch_within_seconds,
            )

        return agent

    app.agent(events_topic, name="apply_customer_events")(in_units(on.customer_events))
    app.agent(topic(SEGMENT_CHANGES.name(ns)), name="apply_segment_changes")(
        in_units(on.segment_changes)
    )
    app.agent(topic(NOTIFICATIONS_OUTCOMES.name(ns)), name="apply_outcomes")(in_units(on.outcomes))
    limit = settings.max_message_bytes

    @app.agent(topic(IDENTITY_CHANGES.name(ns)))
    async def apply_identity_changes(stream: Any) -> None:
        async for got in decoded(
            stream, IDENTITY_CHANGES.adapter, on.dead_letters, service=SERVICE, max_bytes=limit
        ):
            await processor.on_identity_change(got.value)

    @app.agent(control_topic)
    async def apply_control(stream: Any) -> None:
        async for got in decoded(
            stream, CONTROL_ADAPTER, on.dead_letters, service=SERVICE, max_bytes=limit
        ):
            await processor.on_control(got.value, got.partition)
            await processor.maybe_flush()

    @rows.on_recover
    async def rebuild() -> None:
        processor.rebuild()

    _timers_and_pages(app, journey, ctx, processor, reports)
    return app, processor


def _timers_and_pages(
    app: faust.App,
    journey: JourneySettings,
    ctx: Context,
    processor: Processor,
    reports: JourneyReports,
) -> None:
    @app.timer(interval=journey.tick_interval_seconds)
    async def sweep() -> None:
        await processor.sweep()

    @app.timer(interval=journey.report_flush_seconds)
    async def flush_reports() -> None:
        await skip_tick_on_outage(reports.flush, outage=REDIS_OUTAGE, what="journey reports")

    add_pages(app, reports, ctx)
