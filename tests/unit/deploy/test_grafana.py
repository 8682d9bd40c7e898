"""The Grafana dashboard shows what exists: every query names a metric some worker
exports, every service has its row, and compose provisions it against Prometheus.

A renamed metric in services/*/metrics.py (or runtime/metrics.py) fails here instead of
leaving an empty panel nobody notices.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.metric_names import exported_metric_names, unknown_metric_names
from tests.unit.deploy.promtool import promtool

ROOT = Path(__file__).resolve().parents[3]
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
MAIN_DASHBOARD = GRAFANA_DIR / "dashboards" / "kizuna.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "kizuna.yml"
COMPOSE_FILE = ROOT / "docker-compose.yml"

SERVICE_ROWS = ["gateway", "identity", "segmenter", "journey", "notifier"]
KPI_ROW = "Business KPIs"
# Business KPIs of issue 8, and a metric each one must be drawn from.
KPI_METRICS = {
    "customers": "kizuna_identity_customers_created_total",
    "merges": "kizuna_identity_merges_total",
    "segment distribution": "kizuna_segmenter_segment_transitions_total",
    "journeys active": "kizuna_journey_instances_active",
    "messages by channel and outcome": "kizuna_notifier_sends_total",
    "recovered carts": "kizuna_journey_conversions_total",
}


def load_json(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path.name} is not a JSON object"
    return loaded


def load_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path.name} is not a YAML mapping"
    return loaded


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' collapsed children included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Row title -> the panels under it (top-level layout: a row owns what follows it)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            current = grouped.setdefault(panel["title"], list(panel.get("panels", [])))
        else:
            current.append(panel)
    return grouped


def datasources(panel: dict[str, Any]) -> list[Any]:
    """The datasource of a panel and of each of its queries."""
    return [panel.get("datasource"), *(t.get("datasource") for t in panel.get("targets", []))]


def datasource_uid() -> str:
    (datasource,) = load_yaml(DATASOURCES)["datasources"]
    assert datasource["type"] == "prometheus"
    return str(datasource["uid"])


def test_when_dashboards_exist_then_there_is_at_least_the_kizuna_one() -> None:
    assert MAIN_DASHBOARD in DASHBOARDS, "deploy/grafana/dashboards/kizuna.json is missing"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_when_a_query_names_a_metric_then_some_worker_exports_it(path: Path) -> None:
    queries = expressions(load_json(path))

    unknown = unknown_metric_names(queries, exported_metric_names())

    assert queries, f"{path.name} has no Prometheus queries"
    assert unknown == [], f"{path.name} queries metrics no worker exports: {unknown}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_when_prometheus_parses_the_queries_then_each_is_valid_promql(
    path: Path, tmp_path: Path
) -> None:
    # Grafana's $__rate_interval becomes a fixed range; promtool parses each query as the
    # expression of a recording rule.
    queries = [expr.replace("$__rate_interval", "5m") for expr in expressions(load_json(path))]
    rules = {
        "groups": [
            {
                "name": path.stem,
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": expr}
                    for n, expr in enumerate(queries)
                ],
            }
        ]
    }
    rules_file = tmp_path / "queries.yml"
    rules_file.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")

    result = promtool("check", "rules", str(rules_file))

    assert result.ok, f"{path.name} has queries Prometheus cannot parse:\n{result.output}"


def test_when_the_dashboard_opens_then_it_has_the_kpis_and_a_row_per_service() -> None:
    dashboard = load_json(MAIN_DASHBOARD)
    by_row = rows(dashboard)
    kpi_queries = " ".join(
        target["expr"] for panel in by_row.get(KPI_ROW, []) for target in panel["targets"]
    )

    assert list(by_row) == [KPI_ROW, *SERVICE_ROWS], f"rows are {list(by_row)}"
    assert all(by_row[name] for name in by_row), "every row has panels"
    for name in SERVICE_ROWS:
        row_queries = " ".join(t["expr"] for p in by_row[name] for t in p.get("targets", []))
        assert f"kizuna_{name}_" in row_queries, f"the {name} row shows no kizuna_{name}_* metric"
    missing = [kpi for kpi, metric in KPI_METRICS.items() if metric not in kpi_queries]
    assert missing == [], f"the {KPI_ROW} row does not show: {missing}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_when_panels_query_then_they_use_the_provisioned_datasource(path: Path) -> None:
    dashboard = load_json(path)
    uids = {
        source.get("uid")
        for panel in panels(dashboard)
        for source in datasources(panel)
        if isinstance(source, dict)
    }
    ids = [panel["id"] for panel in panels(dashboard)]

    assert dashboard.get("uid"), f"{path.name} needs a fixed uid (links survive re-provisioning)"
    assert uids == {datasource_uid()}, f"{path.name} uses datasources {uids}"
    assert len(ids) == len(set(ids)), f"{path.name} repeats panel ids"


def test_when_compose_starts_grafana_then_it_is_provisioned_with_the_dashboards() -> None:
    grafana = load_yaml(COMPOSE_FILE)["services"]["grafana"]
    mounts = {str(volume).split(":")[0]: str(volume).split(":")[1] for volume in grafana["volumes"]}
    (provider,) = load_yaml(PROVIDERS)["providers"]
    (datasource,) = load_yaml(DATASOURCES)["datasources"]

    assert str(grafana["image"]).startswith("grafana/grafana:"), "use the official image"
    assert grafana["ports"] == ["127.0.0.1:3000:3000"], "publish Grafana on loopback only"
    assert mounts.get("./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    assert mounts.get("./deploy/grafana/dashboards") == provider["options"]["path"], (
        "the dashboard provider must read the directory the dashboards are mounted at"
    )
    assert datasource["url"] == "http://prometheus:9090", "the compose Prometheus"
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
