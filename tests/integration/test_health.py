"""Given a faust worker whose predecessor was killed, when it starts, then /health says
``joining`` (503) until it is in its group with its partitions and its streams run, and
only then ``ok`` (200) with the partitions it holds. Before, it answered ``ok`` with no
partitions from its first second, and a test (or an orchestrator) that took that for
ready moved on while the worker still waited for the dead member's session to expire."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from runtime.app import IDENTITY_GC
from runtime.settings import Settings
from tests.integration.conftest import Worker

pytestmark = pytest.mark.usefixtures("topics")
JOURNEY = "services.journey"
SESSION_SECONDS = 10  # the killed worker holds its place this long


def health(port: int) -> tuple[int, dict[str, Any]] | None:
    """(HTTP status, body), or None while nothing answers on the port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
    except OSError:
        return None


def test_when_a_killed_workers_session_still_holds_the_group_then_its_successor_is_not_ready(
    settings: Settings,
    worker_factory: Callable[[str], Worker],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    monkeypatch.setenv("KIZUNA_JOURNEY_INTAKE", "faust")
    monkeypatch.setenv("KIZUNA_SESSION_TIMEOUT_SECONDS", str(SESSION_SECONDS))
    first = worker_factory(JOURNEY)  # ready: in the group, holding every partition
    assert (ready := health(first.port)) is not None
    assert (ready[0], ready[1]["status"]) == (200, "ok")
    assert ready[1]["assigned"]
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    killed_at = time.monotonic()

    successor = Worker(JOURNEY, settings, tmp_path / "successor.log")
    try:
        answers: list[tuple[float, int, str, list[str]]] = []
        deadline = killed_at + SESSION_SECONDS + 60
        while time.monotonic() < deadline:
            got = health(successor.port)
            if got is not None:
                code, body = got
                answers.append(
                    (time.monotonic() - killed_at, code, body["status"], body["assigned"])
                )
                if code == 200:
                    break
            time.sleep(0.2)
        assert answers, f"no answer from /health: {successor.log_tail()}"
        early = [a for a in answers if a[0] < SESSION_SECONDS - 2]  # the session still runs
        assert early, f"the successor answered only after the session ran out: {answers}"
        assert {(code, status) for _, code, status, _ in early} == {(503, "joining")}
        _, code, status, assigned = answers[-1]
        assert (code, status) == (200, "ok"), successor.log_tail()
        assert assigned  # the partitions it now holds
    finally:
        successor.stop()


def test_when_the_identity_worker_runs_then_it_collects_garbage_at_its_own_thresholds(
    worker_factory: Callable[[str], Worker],
) -> None:
    """Its own, not the other workers' FAST_GC: with those, ~10 % of its samples went to
    the collector walking its caches again (runtime.app.IDENTITY_GC)."""
    worker = worker_factory("services.identity")

    got = health(worker.port)

    assert got is not None
    assert got[1]["gc_thresholds"] == list(IDENTITY_GC)
