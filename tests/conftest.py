"""Test harness: real Kafka + Redis for integration tests, nothing for unit tests.

Where the servers come from, in order:
1. ``KIZUNA_KAFKA`` and ``KIZUNA_REDIS`` are set (``make test`` does this): use them.
2. Java is here: start the scripted local stack once per session (deploy/local/stack.sh).
3. A Docker engine answers: testcontainers.
Each test gets its own topic namespace (fresh topics) and consumer groups.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.localstack import LocalStack, StackAddress, kafka_healthy, redis_healthy
from runtime.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if "integration" in path.parts or "faults" in path.parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in path.parts:
            item.add_marker(pytest.mark.e2e)


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker  # type: ignore[import-untyped]

        return bool(docker.from_env(timeout=3).ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def stack() -> Iterator[StackAddress]:
    kafka, redis_url = os.environ.get("KIZUNA_KAFKA"), os.environ.get("KIZUNA_REDIS")
    if kafka and redis_url:
        yield StackAddress(kafka=kafka, redis=redis_url)
        return
    if shutil.which("java"):
        local = LocalStack()
        address = local.address()
        already_up = kafka_healthy(address.kafka) and redis_healthy(address.redis)
        if not already_up:
            local.up()
        yield address
        if not already_up:
            local.down()
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.redis import RedisContainer

        with KafkaContainer("apache/kafka:3.9.1").with_kraft() as k, RedisContainer() as r:
            host, port = r.get_container_host_ip(), r.get_exposed_port(6379)
            yield StackAddress(kafka=k.get_bootstrap_server(), redis=f"redis://{host}:{port}/0")
        return
    pytest.fail("no Kafka: set KIZUNA_KAFKA/KIZUNA_REDIS, install Java, or run a Docker engine")


@pytest.fixture
def namespace() -> str:
    """A fresh topic/consumer-group namespace for one test."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings_factory(
    stack: StackAddress, namespace: str, tmp_path: Path
) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "kafka": stack.kafka,
            "redis": stack.redis,
            "namespace": namespace,
            "partitions": 2,
            "data_dir": str(tmp_path / "faust"),
            "log_format": "console",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()
