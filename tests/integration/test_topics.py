"""Given a broker, creating the catalogue is idempotent and applies each topic's config."""

from __future__ import annotations

from confluent_kafka.admin import ConfigResource

from runtime.kafka import create_admin
from runtime.settings import Settings
from runtime.topics import delete_topics, ensure_topics
from schemas.topics import CATALOGUE, DEADLETTER


def test_when_topics_are_ensured_twice_then_the_second_run_creates_nothing(
    settings: Settings,
) -> None:
    admin = create_admin(settings.kafka)
    try:
        first = ensure_topics(admin, settings.namespace, partitions=2)
        second = ensure_topics(admin, settings.namespace, partitions=2)

        assert sorted(first) == sorted(spec.name(settings.namespace) for spec in CATALOGUE)
        assert second == []
        resource = ConfigResource(ConfigResource.Type.TOPIC, DEADLETTER.name(settings.namespace))
        config = admin.describe_configs([resource])[resource].result(timeout=10)
        assert config["retention.ms"].value == str(DEADLETTER.retention_ms)
    finally:
        delete_topics(admin, [spec.name(settings.namespace) for spec in CATALOGUE])
