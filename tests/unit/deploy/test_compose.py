"""docker-compose.yml, the Dockerfile and Prometheus agree with the code that exists.

No Docker engine is needed: the files are parsed and checked against the repo, so a
worker added under services/ without its compose service, port or scrape target fails
here rather than on someone's first `docker compose up`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.unit.deploy.metric_names import exported_metric_names, unknown_metric_names

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERT_RULES = PROMETHEUS_DIR / "alerts.yml"

# The one table of worker ports (deploy/local/run.sh uses the same numbers).
WORKER_PORTS = {
    "gateway": 8080,
    "identity": 6066,
    "segmenter": 6067,
    "journey": 6068,
    "notifier": 6069,
}
INFRASTRUCTURE = {"kafka", "kafka-init", "redis", "prometheus", "grafana"}
ONE_SHOT = {"kafka-init"}
KIZUNA_JOB = "kizuna"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104  (inside a container, so Docker can publish the port)

Service = dict[str, Any]


def load_yaml(path: Path) -> dict[str, Any]:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path.relative_to(ROOT)} is not a YAML mapping"
    return loaded


def compose_services() -> dict[str, Service]:
    services = load_yaml(COMPOSE_FILE).get("services")
    assert isinstance(services, dict), "docker-compose.yml has no `services:` mapping"
    assert services, "docker-compose.yml declares no services"
    return services


def workers_on_disk(root: Path = ROOT) -> set[str]:
    """Every ``services/<name>/`` that ``python -m services.<name>`` can start."""
    return {main.parent.name for main in (root / "services").glob("*/__main__.py")}


def compose_workers(services: dict[str, Service]) -> dict[str, Service]:
    return {name: spec for name, spec in services.items() if name not in INFRASTRUCTURE}


def environment(service: Service) -> dict[str, str]:
    """A service's environment as strings, whether written as a mapping or a list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command_words(value: str | list[str]) -> list[str]:
    return value.split() if isinstance(value, str) else [str(word) for word in value]


def healthcheck_text(service: Service) -> str:
    return " ".join(command_words(service.get("healthcheck", {}).get("test", [])))


def named_volumes(service: Service) -> list[str]:
    """Named volumes a service mounts (bind mounts like ``./deploy/...`` excluded)."""
    sources = []
    for volume in service.get("volumes", []):
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
        if source and not source.startswith((".", "/", "~")):
            sources.append(source)
    return sources


def builds_kizuna_image(service: Service) -> bool:
    build = service.get("build")
    if not isinstance(build, dict):
        return False
    return build.get("context") == "." and build.get("dockerfile") == "deploy/Dockerfile"


def scrape_targets(job_name: str) -> dict[str, str]:
    """``{"host:port": service label}`` for one Prometheus scrape job."""
    jobs = load_yaml(PROMETHEUS_CONFIG).get("scrape_configs", [])
    matching = [job for job in jobs if job.get("job_name") == job_name]
    assert len(matching) == 1, f"prometheus.yml needs exactly one job named {job_name!r}"
    targets: dict[str, str] = {}
    for group in matching[0].get("static_configs", []):
        for target in group.get("targets", []):
            targets[target] = group.get("labels", {}).get("service", "")
    return targets


def test_when_compose_is_read_then_it_follows_the_compose_spec_without_version() -> None:
    compose = load_yaml(COMPOSE_FILE)

    assert "version" not in compose, "the compose spec has no `version:` key; drop it"
    assert set(compose["services"]) >= INFRASTRUCTURE, (
        f"missing infrastructure services: {sorted(INFRASTRUCTURE - set(compose['services']))}"
    )


def test_when_a_service_runs_for_good_then_it_has_a_healthcheck() -> None:
    services = compose_services()

    missing = [
        name
        for name, spec in services.items()
        if name not in ONE_SHOT and not healthcheck_text(spec)
    ]

    assert not missing, f"long-running services without a healthcheck: {missing}"


def test_when_a_worker_package_has_a_main_then_compose_runs_it_and_vice_versa() -> None:
    on_disk = workers_on_disk()
    in_compose = set(compose_workers(compose_services()))

    assert on_disk - in_compose == set(), (
        f"services/<name>/__main__.py without a docker-compose.yml service: "
        f"{sorted(on_disk - in_compose)}; add one (copy the identity service)"
    )
    assert in_compose - on_disk == set(), (
        f"docker-compose.yml runs workers with no services/<name>/__main__.py: "
        f"{sorted(in_compose - on_disk)} (or they are infrastructure missing from INFRASTRUCTURE)"
    )


def test_when_workers_are_listed_then_each_listens_on_its_own_port_from_the_table() -> None:
    workers = compose_workers(compose_services())
    unknown = sorted(set(workers) - set(WORKER_PORTS))
    assert not unknown, f"workers without a port in WORKER_PORTS: {unknown}"
    assert len(set(WORKER_PORTS.values())) == len(WORKER_PORTS), "WORKER_PORTS repeats a port"

    for name, spec in workers.items():
        port = WORKER_PORTS[name]
        assert environment(spec).get("KIZUNA_WEB_PORT") == str(port), (
            f"{name}: KIZUNA_WEB_PORT must be {port}"
        )
        assert f"http://localhost:{port}/health" in healthcheck_text(spec), (
            f"{name}: the healthcheck must GET http://localhost:{port}/health"
        )
        assert "urllib" in healthcheck_text(spec), (
            f"{name}: python:3.11-slim has no curl; use urllib in the healthcheck"
        )


def test_when_a_worker_starts_then_it_runs_its_module_against_compose_kafka_and_redis() -> None:
    for name, spec in compose_workers(compose_services()).items():
        env = environment(spec)

        assert command_words(spec.get("command", [])) == ["python", "-m", f"services.{name}"], (
            f"{name}: command must be python -m services.{name}"
        )
        assert builds_kizuna_image(spec), f"{name}: must build from deploy/Dockerfile"
        assert env.get("KIZUNA_KAFKA") == "kafka:9092", f"{name}: KIZUNA_KAFKA=kafka:9092"
        assert env.get("KIZUNA_REDIS") == "redis://redis:6379/0", (
            f"{name}: KIZUNA_REDIS=redis://redis:6379/0"
        )
        assert env.get("KIZUNA_WEB_HOST") == ALL_INTERFACES, (
            f"{name}: /health and /metrics must listen on 0.0.0.0 to be reachable"
        )


def test_when_a_service_depends_on_another_then_it_waits_for_a_condition() -> None:
    services = compose_services()
    expected_for_workers = {
        "kafka": "service_healthy",
        "redis": "service_healthy",
        "kafka-init": "service_completed_successfully",
    }

    for name, spec in services.items():
        depends_on = spec.get("depends_on", {})
        assert isinstance(depends_on, dict), (
            f"{name}: depends_on must be a mapping with conditions, not a list of names"
        )
        for dependency, options in depends_on.items():
            assert dependency in services, f"{name} depends on unknown service {dependency!r}"
            assert isinstance(options, dict), f"{name}: depends_on {dependency} needs options"
            assert options.get("condition"), f"{name}: depends_on {dependency} needs a condition"
    for name, spec in compose_workers(services).items():
        conditions = {dep: opts["condition"] for dep, opts in spec["depends_on"].items()}
        assert conditions == expected_for_workers, (
            f"{name}: must wait for {expected_for_workers}, waits for {conditions}"
        )


def test_when_kafka_starts_then_it_is_a_single_kraft_node_without_zookeeper() -> None:
    services = compose_services()
    kafka = services["kafka"]
    env = environment(kafka)

    assert kafka.get("image") == "apache/kafka:3.9.1", "use the official apache/kafka:3.9.1"
    assert not [name for name in services if "zookeeper" in name], "KRaft needs no ZooKeeper"
    assert not [key for key in env if "ZOOKEEPER" in key], "no ZooKeeper settings in KRaft"
    assert set(env.get("KAFKA_PROCESS_ROLES", "").split(",")) == {"broker", "controller"}, (
        "one node is both broker and controller"
    )
    assert env.get("KAFKA_NODE_ID") == "1"
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS") == "1@kafka:9093"
    assert env.get("KAFKA_CONTROLLER_LISTENER_NAMES") == "CONTROLLER"
    assert re.search(r"\bPLAINTEXT://[^,]*:9092\b", env.get("KAFKA_LISTENERS", ""))
    assert re.search(r"\bCONTROLLER://[^,]*:9093\b", env.get("KAFKA_LISTENERS", ""))
    assert "PLAINTEXT://kafka:9092" in env.get("KAFKA_ADVERTISED_LISTENERS", ""), (
        "containers reach the broker as kafka:9092"
    )
    replication = {key: value for key, value in env.items() if "REPLICATION_FACTOR" in key}
    assert replication, "set the replication factors explicitly"
    assert set(replication.values()) == {"1"}, (
        f"a single node needs replication factors of 1: {replication}"
    )
    assert env.get("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS") == "0"
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", (
        "topics come from the catalogue (kafka-init), not from auto-creation"
    )
    assert "kafka-broker-api-versions.sh --bootstrap-server localhost:9092" in healthcheck_text(
        kafka
    )
    assert named_volumes(kafka), "Kafka's log dir must be on a named volume"


def test_when_the_stack_starts_then_kafka_init_creates_the_topics_once() -> None:
    kafka_init = compose_services()["kafka-init"]

    assert builds_kizuna_image(kafka_init), "kafka-init uses the app image (deploy/Dockerfile)"
    assert command_words(kafka_init["command"]) == ["python", "-m", "runtime.topics", "ensure"]
    assert environment(kafka_init).get("KIZUNA_KAFKA") == "kafka:9092"
    assert kafka_init["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert kafka_init.get("restart") == "no", 'a one-shot job needs restart: "no" (quoted)'


def test_when_redis_starts_then_it_persists_with_appendonly_on_a_named_volume() -> None:
    redis = compose_services()["redis"]
    words = command_words(redis.get("command", []))

    assert str(redis.get("image", "")).startswith("redis:7"), "use redis:7"
    assert words[:1] == ["redis-server"], "run redis-server"
    assert "--appendonly" in words, "run redis-server with --appendonly yes"
    assert words[words.index("--appendonly") + 1] == "yes", "appendonly must be yes"
    assert "redis-cli ping" in healthcheck_text(redis)
    assert named_volumes(redis), "Redis data must be on a named volume"


def test_when_volumes_are_mounted_then_every_named_volume_is_declared() -> None:
    compose = load_yaml(COMPOSE_FILE)
    declared = set(compose.get("volumes") or {})

    used = {v for spec in compose["services"].values() for v in named_volumes(spec)}

    assert used <= declared, f"named volumes used but not declared: {sorted(used - declared)}"


def test_when_prometheus_scrapes_then_it_targets_exactly_the_workers_on_their_ports() -> None:
    services = compose_services()
    prometheus = services["prometheus"]
    expected = {f"{name}:{WORKER_PORTS[name]}": name for name in compose_workers(services)}

    targets = scrape_targets(KIZUNA_JOB)

    assert str(prometheus.get("image", "")).startswith("prom/prometheus"), "use prom/prometheus"
    assert any(
        str(volume).startswith("./deploy/prometheus:") for volume in prometheus["volumes"]
    ), "mount ./deploy/prometheus into the prometheus container"
    assert targets == expected, (
        f"prometheus.yml job {KIZUNA_JOB!r} must scrape exactly {expected}, has {targets}"
    )
    job = next(
        job
        for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
        if job["job_name"] == KIZUNA_JOB
    )
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert "alerts.yml" in load_yaml(PROMETHEUS_CONFIG).get("rule_files", [])


def test_when_alert_rules_are_loaded_then_they_watch_dead_letters_and_down_workers() -> None:
    rules = [rule for group in load_yaml(ALERT_RULES)["groups"] for rule in group["rules"]]
    expressions = " ".join(rule["expr"] for rule in rules)

    assert "kizuna_deadletters_total" in expressions, "alert when dead letters increase"
    assert re.search(r"\bup\b(\{[^}]*\})?\s*==\s*0", expressions), (
        "alert when a worker is down (up == 0)"
    )
    assert all(rule.get("alert") and rule.get("labels", {}).get("severity") for rule in rules), (
        "every rule is an alert with a severity label"
    )
    assert unknown_metric_names([expressions], exported_metric_names()) == [], (
        "alerts use metrics no worker exports"
    )


def test_when_the_image_is_built_then_it_installs_the_project_as_a_non_root_user() -> None:
    assert DOCKERFILE.is_file(), "deploy/Dockerfile is missing"
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    ignored = set(DOCKERIGNORE.read_text(encoding="utf-8").split())

    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, flags=re.MULTILINE)
    assert "pip install '.[rocksdb]'" in dockerfile, "install the repo with its rocksdb extra"
    for package in ("pyproject.toml", "schemas/", "runtime/", "services/"):
        assert re.search(rf"^COPY\s+{re.escape(package)}", dockerfile, flags=re.MULTILINE), (
            f"the build must COPY {package}"
        )
    assert users, "the image must switch to a non-root USER"
    assert users[-1] not in {"root", "0"}, "the final stage must run as a non-root USER"
    assert {".git", ".venv", ".local"} <= ignored, ".dockerignore must keep .git/.venv/.local out"
