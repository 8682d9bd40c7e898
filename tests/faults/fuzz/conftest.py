"""The fuzz suite runs on the integration harness: real Kafka + Redis, fresh topics."""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401  (fixtures)
    consumer_factory,
    producer,
    redis_client,
    topics,
    worker_factory,
)
from tests.integration.gateway.conftest import gateway_factory  # noqa: F401  (fixture)
