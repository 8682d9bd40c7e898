"""The e2e tests use the integration harness: fresh topics, real workers as processes."""

from tests.integration.conftest import (  # noqa: F401 - pytest fixtures
    consumer_factory,
    producer,
    redis_client,
    topics,
    worker_factory,
)
