"""Given a shop whose SDK keeps posting orders through the gateway to identity and the
segmenter, when identity or the segmenter is killed -9 mid-stream and restarted while
orders keep coming, then every order the gateway accepted is on its customer's profile
exactly once, and the dead-letter topic holds exactly the invalid orders. (The gateway
keeps no state: a 200 means the events are in Kafka, see its Kafka-down test.)

Each worker alone is killed -9 in its own integration test (identity: test_replay.py,
journey: test_journeys.py, notifier: test_worker.py); this one kills a stage in the
middle of the running pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.settings import Settings
from tests.faults.harness import (
    WRITE_KEY,
    Processes,
    ShopTraffic,
    customer_events,
    dead_letters,
    duplicates,
    kill,
    profiles_count_each_order_once,
)
from tests.integration.conftest import redis_client, topics  # noqa: F401  (fixtures)


@pytest.fixture
def processes(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Processes]:
    for name, value in {
        "KIZUNA_GATEWAY_WRITE_KEYS": json.dumps({WRITE_KEY: "web"}),
        "KIZUNA_GATEWAY_REQUEST_TIMEOUT_S": "3",
        "KIZUNA_SESSION_TIMEOUT_SECONDS": "6",  # the killed member's partitions move on fast
        "KIZUNA_IDENTITY_BATCH_SIZE": "20",
        "KIZUNA_SEGMENTER_VIEW_FLUSH_SECONDS": "0.1",
    }.items():
        monkeypatch.setenv(name, value)
    running = Processes(settings, tmp_path)
    yield running
    running.stop_all()


@pytest.mark.parametrize("victim", ["services.identity", "services.segmenter"])
@pytest.mark.usefixtures("topics", "redis_client")
def test_when_a_stage_is_killed_mid_stream_then_every_accepted_order_counts_once(
    settings: Settings, processes: Processes, victim: str
) -> None:
    gateway, identity, segmenter = processes.start(
        "services.gateway", "services.identity", "services.segmenter"
    )
    traffic = ShopTraffic(gateway.port).start()
    traffic.wait_acked(80)

    kill(identity if victim == "services.identity" else segmenter)
    traffic.wait_acked(len(traffic.acked) + 80)  # the shop goes on while the stage is dead
    processes.start(victim)
    traffic.wait_acked(len(traffic.acked) + 80)
    traffic.stop()

    events = customer_events(settings.kafka, settings.namespace, traffic.acked)
    event_ids = [e.event.event_id for e in events]
    assert set(event_ids) == set(traffic.acked)
    print(f"\n{len(traffic.acked)} orders, {duplicates(event_ids)} redelivered by identity")
    profiles_count_each_order_once(settings.redis, settings.namespace, events, traffic.acked)
    letters = dead_letters(settings.kafka, settings.namespace, traffic.bad)
    assert {letter.key.decode() for letter in letters} == traffic.bad  # at least once each
    assert {(letter.service, letter.reason) for letter in letters} == {("gateway", "invalid")}
