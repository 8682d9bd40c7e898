"""The raw consume baseline, measured on the same broker in the same run as the stages.

    python bench/baseline.py [--messages 300000] [--faust-messages 30000] [--rounds 3]

A fresh one-partition topic gets ``--messages`` customer events (schemas.examples
proportions, wrapped and encoded as identity writes them: what segmenter, journey and
the notifier's ledger read). Then each reader starts from offset 0 in its own group:

1. confluent-kafka ``Consumer.consume(1000)``, best of ``--rounds``: the ceiling every
   stage's events/s is divided by in the report;
2. aiokafka ``getmany`` (the client faust is built on), best of ``--rounds``;
3. a bare faust agent doing nothing per message (a tiny faust app in a subprocess,
   ``async for _ in stream``), over the first ``--faust-messages`` messages.

Each rate runs from the first to the last message read (connect and assignment
excluded). The gap between 1-2 and 3 is the price of faust's per-message machinery,
before any kizuna work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from common import ROOT, clean_up, produce_waiting, record
from confluent_kafka.admin import NewTopic

from runtime.kafka import create_admin, create_consumer, create_producer
from runtime.settings import load_settings
from schemas.codec import encode
from schemas.customer import CustomerEvent
from schemas.examples import example_stream

DISTINCT = 20_000  # encoded once, then repeated: producing is not what is measured


def messages(count: int) -> tuple[list[tuple[bytes, bytes]], float]:
    """``count`` (key, value) customer events cycling over DISTINCT encodings; mean size."""
    now = datetime.now(UTC)
    distinct = []
    for index, event in enumerate(example_stream(min(count, DISTINCT), seed=11)):
        customer = f"c{index % 5_000}"
        shifted = event.model_copy(update={"occurred_at": now - timedelta(seconds=count - index)})
        wrapped = CustomerEvent(
            customer_id=customer, identity_version=1, resolved_at=now, event=shifted
        )
        distinct.append((customer.encode(), encode(wrapped)))
    size = sum(len(v) for _, v in distinct) / len(distinct)
    return [distinct[i % len(distinct)] for i in range(count)], size


def produce(bootstrap: str, topic: str, batch: list[tuple[bytes, bytes]]) -> None:
    producer = create_producer(bootstrap, **{"linger.ms": 20, "batch.num.messages": 10000})
    for key, value in batch:
        produce_waiting(producer, topic, key, value, partition=0)
    assert producer.flush(120) == 0


def confluent_rate(bootstrap: str, topic: str, count: int, group: str) -> float:
    consumer = create_consumer(bootstrap, group)
    consumer.subscribe([topic])
    got, first, deadline = 0, 0.0, time.monotonic() + 300
    try:
        while got < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"confluent read {got}/{count} in 300 s")
            for message in consumer.consume(1000, 1.0):
                if message.error():
                    continue
                if got == 0:
                    first = time.perf_counter()
                got += 1
        return (got - 1) / (time.perf_counter() - first)
    finally:
        consumer.close()


async def aiokafka_rate(bootstrap: str, topic: str, count: int, group: str) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got, first, deadline = 0, 0.0, time.monotonic() + 300
    try:
        while got < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"aiokafka read {got}/{count} in 300 s")
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                if records and got == 0:
                    first = time.perf_counter()
                got += len(records)
        return (got - 1) / (time.perf_counter() - first)
    finally:
        await consumer.stop()


def faust_rate(namespace: str, topic: str, count: int) -> float:
    """Run the bare agent (this file, ``faust-agent``) until it has read ``count``."""
    result = Path(f"/tmp/{namespace}-faust-bare.json")
    log = Path(f"/tmp/{namespace}-faust-bare.log")
    command = [sys.executable, __file__, "faust-agent", namespace, topic, str(count), str(result)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not result.exists():
            if process.poll() is not None:
                raise SystemExit(f"bare faust agent exited, see {log}")
            if time.monotonic() > deadline:
                raise SystemExit(f"bare faust agent did not read {count} in 300 s, see {log}")
            time.sleep(0.2)
        return float(json.loads(result.read_text())["rate"])
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        result.unlink(missing_ok=True)


def faust_agent(namespace: str, topic_name: str, count: int, result: str) -> None:
    """The child process: a faust app with one agent that only counts."""
    import faust

    from runtime.app import broker_url

    app = faust.App(
        f"{namespace}-bare",
        broker=broker_url(load_settings().kafka),
        store="memory://",
        datadir=f"/tmp/{namespace}",
        web_enabled=False,
        autodiscover=False,
        topic_partitions=1,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")

    @app.agent(topic)
    async def count_only(stream: Any) -> None:
        got, first = 0, 0.0
        async for _ in stream:
            if got == 0:
                first = time.perf_counter()
            got += 1
            if got == count:
                _write_rate(result, (got - 1) / (time.perf_counter() - first))

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


def _write_rate(path: str, rate: float) -> None:
    Path(path).write_text(json.dumps({"rate": rate}))  # once, after the count: not hot


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--faust-messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    topic = f"{namespace}.customer.events"
    admin = create_admin(settings.kafka)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    try:
        batch, size = messages(args.messages)
        produce(settings.kafka, topic, batch)
        del batch
        confluent = max(
            confluent_rate(settings.kafka, topic, args.messages, f"{namespace}-c{r}")
            for r in range(args.rounds)
        )
        aio = max(
            asyncio.run(aiokafka_rate(settings.kafka, topic, args.messages, f"{namespace}-a{r}"))
            for r in range(args.rounds)
        )
        bare = faust_rate(namespace, topic, min(args.faust_messages, args.messages))
    finally:
        clean_up(admin, namespace)
    print(
        f"raw consume baseline: {args.messages:,} customer events (mean {size:.0f} bytes), "
        "1 partition, from offset 0"
    )
    rows = [
        ("confluent-kafka consume()", confluent, f"best of {args.rounds}"),
        ("aiokafka getmany()", aio, f"best of {args.rounds}"),
        ("bare faust agent (no work)", bare, f"{min(args.faust_messages, args.messages):,} msgs"),
    ]
    print(f"{'reader':32} {'msg/s':>12} {'vs confluent':>13}")
    for name, rate, note in rows:
        print(f"{name:32} {rate:12,.0f} {rate / confluent:13.3f}  ({note})")
        record("baseline", name, rate, "events/s", note=f"{note}; mean {size:.0f} B/message")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "faust-agent":
        _, _, ns, name, wanted, out = sys.argv
        os.environ.setdefault("KIZUNA_LOG_LEVEL", "WARNING")
        faust_agent(ns, name, int(wanted), out)
    else:
        main()
