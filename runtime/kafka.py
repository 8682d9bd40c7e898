"""confluent-kafka clients for code outside faust agents (gateway, CLIs, tests, bench)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient


def producer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """Durable by default: idempotent, acks=all, so an acknowledged event is in Kafka.

    murmur2 keyed partitioning, as Java clients and aiokafka (faust) use: every producer
    puts one customer id on the same partition, so co-partitioned topics line up.
    """
    return {
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 5,
        **extra,
    }


def create_producer(bootstrap: str, **extra: Any) -> Producer:
    return Producer(producer_config(bootstrap, **extra))


def create_consumer(bootstrap: str, group_id: str, **extra: Any) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **extra,
        }
    )


def create_admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})
