"""The alert rules watch what an operator must hear about, and fire when they should.

deploy/prometheus/alerts_test.yml holds the stories (a worker stops, a consumer falls
behind, LINE has an outage, timers fire late, the shop goes silent, …); ``promtool test
rules`` replays them against alerts.yml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.unit.deploy.metric_names import exported_metric_names, unknown_metric_names
from tests.unit.deploy.promtool import promtool

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERT_RULES = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts_test.yml"

# What issue 8 asks the rules to watch, and the metric that proves each is watched.
MUST_WATCH = {
    "consumer lag": "kizuna_faust_[a-z]+_topic_partition_end_offset",
    "dead letters": "kizuna_deadletters_total",
    "provider errors": "kizuna_notifier_sends_total",
    "timer lateness": "kizuna_journey_timer_lateness_seconds_bucket",
    "no events": "kizuna_messages_consumed_total",
    "workers down": 'up{job="kizuna"}',
}


def load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path.name} is not a YAML mapping"
    return loaded


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load(ALERT_RULES)["groups"] for rule in group["rules"]]


def test_when_the_rules_are_read_then_each_concern_of_the_issue_has_an_alert() -> None:
    expressions = " ".join(rule["expr"] for rule in alert_rules())

    unwatched = [concern for concern, needle in MUST_WATCH.items() if needle not in expressions]

    assert unwatched == [], f"no alert watches: {unwatched}"


def test_when_alerts_name_metrics_then_some_worker_exports_each_of_them() -> None:
    expressions = [rule["expr"] for rule in alert_rules()]

    unknown = unknown_metric_names(expressions, exported_metric_names())

    assert unknown == [], f"alerts.yml uses metrics no worker exports: {unknown}"


def test_when_an_alert_is_written_then_alerts_test_yml_has_a_story_for_it() -> None:
    tested = {
        case["alertname"]
        for test in load(ALERT_TESTS)["tests"]
        for case in test.get("alert_rule_test", [])
    }

    untested = sorted({rule["alert"] for rule in alert_rules()} - tested)

    assert untested == [], f"alerts without a promtool test in alerts_test.yml: {untested}"


def test_when_promtool_replays_the_stories_then_every_alert_fires_as_written() -> None:
    result = promtool("test", "rules", str(ALERT_TESTS))

    assert result.ok, f"promtool test rules {ALERT_TESTS.name}:\n{result.output}"
