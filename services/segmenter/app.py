"""The segmenter worker: topics, the customer table, agents, timers, pages — wiring only.

customer.events ─┐                      ┌─▶ segment.changes
identity.changes ─┼─▶ Processor ─▶ table ┤─▶ Redis profile view (+ population)
segmenter.control ┘   (domain steps)     └─▶ segmenter.control (ticks, hand-offs)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, cast

import faust
from pydantic import BaseModel

from runtime.app import create_app
from runtime.batches import process_batches, skip_tick_on_outage, stop_unless_delivered
from runtime.consumer import Record, table_stage
from runtime.deadletter import FaustDeadLetters
from runtime.intake import decode_batch, decode_batch_narrow, decoded
from runtime.producer import AsyncProducer
from runtime.redis import REDIS_OUTAGE, create_redis
from runtime.settings import Settings, table_options
from runtime.store import stage_table
from schemas.codec import encode
from schemas.segments import SegmentChanged
from schemas.topics import CUSTOMER_EVENTS, IDENTITY_CHANGES, SEGMENT_CHANGES, TopicSpec
from services.segmenter.adapters.partitioning import partition_function
from services.segmenter.adapters.population import RedisPopulation
from services.segmenter.adapters.profiles import RedisProfileView
from services.segmenter.messages import CONTROL_ADAPTER, SEEN_ONLY, SeenCustomerEvent
from services.segmenter.processor import Processor
from services.segmenter.settings import SegmenterSettings
from services.segmenter.web import add_pages

SERVICE = "segmenter"
TABLE = "customers"
CHANGE_SENT = stop_unless_delivered(SERVICE, "segment change")


def control_spec(partitions: int) -> TopicSpec:
    """Internal topic; must have as many partitions as customer.events (same table)."""
    return TopicSpec(
        "segmenter.control", "customer_id", "ControlMessage", CONTROL_ADAPTER, partitions
    )


class FaustEmitter:
    def __init__(self, segment_changes: Any, control: Any) -> None:
        self._changes, self._control = segment_changes, control

    async def segment_changed(self, change: SegmentChanged) -> Awaitable[Any]:
        """Not awaited here: faust flushes its producer before it commits an offset. A
        change Kafka refused stops the worker before that commit (the input is read
        again after the restart). Returns the delivery, for callers that must see it
        acknowledged before they write a row."""
        sent = await self._changes.send(key=change.customer_id.encode(), value=encode(change))
        sent.add_done_callback(CHANGE_SENT)
        return cast(Awaitable[Any], sent)

    async def control(
        self, partition: int, key: str, message: BaseModel, *, wait: bool = False
    ) -> None:
        sent = await self._control.send(
            key=key.encode(), value=encode(message), partition=partition
        )
        if wait:
            await sent  # acknowledged before the source offset can be committed


class KafkaEmitter:
    """The batch intake's emitter: one confluent-kafka producer for segment changes,
    control messages and (through the table) changelog records."""

    def __init__(self, producer: AsyncProducer, changes_topic: str, control_topic: str) -> None:
        self.producer, self._changes, self._control = producer, changes_topic, control_topic

    async def segment_changed(self, change: SegmentChanged) -> Awaitable[Any]:
        self.producer.produce(self._changes, change.customer_id.encode(), encode(change))
        return self.producer.acks()

    async def control(
        self, partition: int, key: str, message: BaseModel, *, wait: bool = False
    ) -> None:
        self.producer.produce(self._control, key.encode(), encode(message), partition=partition)
        if wait:
            await self.producer.acks()


def build(settings: Settings, seg: SegmenterSettings) -> tuple[faust.App, Processor]:
    """The worker, reading its inputs as ``seg.intake`` says (faust agents or batches)."""
    if seg.intake == "batch":
        return build_batch(settings, seg)
    return build_faust(settings, seg)


def _processor(
    settings: Settings,
    seg: SegmenterSettings,
    table: Any,
    emitter: Any,
    redis: Any,
    owned: Callable[[], set[int]],
) -> Processor:
    partitions = settings.partitions or CUSTOMER_EVENTS.partitions
    quantiles = seg.thresholds == "quantile"
    return Processor(
        table,
        seg.policy(settings),
        emitter,
        RedisProfileView(redis, settings.namespace),
        partition_of=partition_function(seg.partitioner, partitions),
        owned=owned,
        population=RedisPopulation(redis, settings.namespace) if quantiles else None,
        sweep_batch=seg.sweep_batch,
        flush_batch=seg.view_flush_batch,
        state_cache=seg.state_cache,
    )


def _timers_and_pages(
    app: faust.App, settings: Settings, seg: SegmenterSettings, processor: Processor, redis: Any
) -> None:
    @app.timer(interval=seg.sweep_interval_seconds)
    async def sweep() -> None:
        await skip_tick_on_outage(
            partial(processor.catch_up, seg.sweep_interval_seconds),
            outage=REDIS_OUTAGE,
            what="segmenter sweep",
        )

    @app.timer(interval=seg.view_flush_seconds)
    async def flush_views() -> None:
        await skip_tick_on_outage(
            processor.flush_views, outage=REDIS_OUTAGE, what="segmenter profile view"
        )

    if processor.population is not None:
        population = processor.population

        @app.timer(interval=seg.thresholds_refresh_seconds)
        async def refresh_thresholds() -> None:
            current = await population.current()
            if current is not None and current.version != processor.policy.thresholds.version:
                processor.policy = replace(processor.policy, thresholds=current)

    add_pages(app, redis, settings.namespace, seg, processor.policy)


def _customer_events(
    processor: Processor, dead_letters: Any, limit: int
) -> Callable[[Sequence[Any]], Awaitable[None]]:
    """A unit of customer events (faust events or batch records: both carry
    ``.message``), for either intake."""

    async def customer_events(events: Sequence[Any]) -> None:
        got = await decode_batch_narrow(
            events,
            SEEN_ONLY,
            CUSTOMER_EVENTS.adapter,
            dead_letters,
            service=SERVICE,
            max_bytes=limit,
        )
        await processor.on_customer_events(
            [
                (
                    g.value.customer_id,
                    g.value.seen() if isinstance(g.value, SeenCustomerEvent) else g.value.event,
                    g.partition,
                )
                for g in got
            ]
        )
        await processor.maybe_flush()

    return customer_events


def build_batch(settings: Settings, seg: SegmenterSettings) -> tuple[faust.App, Processor]:
    """Inputs read in batches with confluent-kafka (runtime.consumer), the customer rows
    in a :class:`ChangelogTable`: no faust agent or table on the per-message path."""
    app = create_app(SERVICE, settings)
    ns, partitions = settings.namespace, settings.partitions or CUSTOMER_EVENTS.partitions
    events_name, changes_name = CUSTOMER_EVENTS.name(ns), IDENTITY_CHANGES.name(ns)
    control_name = control_spec(partitions).name(ns)
    producer = AsyncProducer(settings.kafka, **{"linger.ms": 5})
    table = stage_table(settings, SERVICE, TABLE, partitions, producer)
    redis = create_redis(settings)
    emitter = KafkaEmitter(producer, SEGMENT_CHANGES.name(ns), control_name)
    processor = _processor(settings, seg, table, emitter, redis, lambda: table.partitions)
    dead_letters = FaustDeadLetters(app, ns)
    limit = settings.max_message_bytes

    customer_events = _customer_events(processor, dead_letters, limit)

    async def identity_changes(records: list[Record]) -> None:
        for got in await decode_batch(
            records, IDENTITY_CHANGES.adapter, dead_letters, service=SERVICE, max_bytes=limit
        ):
            await processor.on_identity_change(got.value)

    async def control(records: list[Record]) -> None:
        for got in await decode_batch(
            records, CONTROL_ADAPTER, dead_letters, service=SERVICE, max_bytes=limit
        ):
            await processor.on_control(got.value, got.partition)
        await processor.maybe_flush()

    async def rebuilt() -> None:
        processor.rebuild()
        await skip_tick_on_outage(  # (what an outage leaves, the view timer goes on with)
            processor.project_all, outage=REDIS_OUTAGE, what="segmenter profile view"
        )

    table_stage(
        app,
        settings,
        SERVICE,
        table,
        # customer.events first: the table holds its partitions
        {events_name: customer_events, changes_name: identity_changes, control_name: control},
        max_batch=seg.input_batch,
        within_seconds=seg.input_batch_within_seconds,
        after_rebalance=rebuilt,
    )

    _timers_and_pages(app, settings, seg, processor, redis)
    return app, processor


def build_faust(settings: Settings, seg: SegmenterSettings) -> tuple[faust.App, Processor]:
    # a few ms of linger batches changelog writes and segment changes into one request
    app = create_app(SERVICE, settings, producer_linger=0.005)
    ns, partitions = settings.namespace, settings.partitions or CUSTOMER_EVENTS.partitions

    def topic(name: str, **options: Any) -> Any:
        return app.topic(name, key_serializer="raw", value_serializer="raw", **options)

    events_topic = topic(CUSTOMER_EVENTS.name(ns))
    changes_topic = topic(IDENTITY_CHANGES.name(ns))
    control_topic = topic(control_spec(partitions).name(ns), partitions=partitions)
    customers = app.Table(
        TABLE,
        partitions=partitions,
        key_type=bytes,  # bytes -> "raw" serializer for the changelog and its recovery
        value_type=bytes,
        options=table_options(settings),
    )
    redis = create_redis(settings)
    emitter = FaustEmitter(topic(SEGMENT_CHANGES.name(ns)), control_topic)
    processor = _processor(
        settings,
        seg,
        customers,
        emitter,
        redis,
        lambda: {
            tp.partition
            for tp in app.assignor.assigned_actives()
            if tp.topic == events_topic.get_topic_name()
        },
    )
    dead_letters = FaustDeadLetters(app, ns)
    limit = settings.max_message_bytes

    customer_events = _customer_events(processor, dead_letters, limit)

    @app.agent(events_topic)
    async def apply_customer_events(stream: Any) -> None:
        """In units of work of up to ``input_batch`` events (see the processor); faust
        acknowledges a batch after it ran."""
        await process_batches(
            stream,
            customer_events,
            service=SERVICE,
            max_batch=seg.input_batch,
            within_seconds=seg.input_batch_within_seconds,
        )

    @app.agent(changes_topic)
    async def apply_identity_changes(stream: Any) -> None:
        async for got in decoded(
            stream, IDENTITY_CHANGES.adapter, dead_letters, service=SERVICE, max_bytes=limit
        ):
            await processor.on_identity_change(got.value)

    @app.agent(control_topic)
    async def apply_control(stream: Any) -> None:
        async for got in decoded(
            stream, CONTROL_ADAPTER, dead_letters, service=SERVICE, max_bytes=limit
        ):
            await processor.on_control(got.value, got.partition)
            await processor.maybe_flush()

    @customers.on_recover
    async def rebuild() -> None:
        processor.rebuild()
        await processor.project_all()

    _timers_and_pages(app, settings, seg, processor, redis)
    return app, processor
