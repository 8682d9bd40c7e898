"""Loading scenario files and the store list, with errors that name the file and field.

Every definition a worker has run is archived in Redis under ``id@version``: people
inside a journey keep the version they entered after the file moves on, and a file
changed without bumping its version is refused instead of silently rewriting it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError
from redis.asyncio import Redis

from services.journey.domain.geofence import Store
from services.journey.domain.scenario import Scenario


class ScenarioError(ValueError):
    """A scenario file cannot be used; the message says which file, field and why."""


def load_scenario(path: Path) -> Scenario:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ScenarioError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(document, dict):
        raise ScenarioError(f"{path}: expected a mapping with id, version, trigger, steps")
    try:
        return Scenario.model_validate(document)
    except ValidationError as err:
        raise ScenarioError(f"{path}: {_explain(err)}") from err


def _explain(err: ValidationError) -> str:
    lines = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(document)"
        lines.append(f"{where}: {problem['msg']}")
    return "; ".join(lines)


def load_scenarios(directory: Path) -> list[Scenario]:
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not files:
        raise ScenarioError(f"{directory}: no scenario files (*.yaml)")
    scenarios = [load_scenario(f) for f in files]
    ids = [s.id for s in scenarios]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ScenarioError(f"{directory}: scenario ids used by more than one file: {repeated}")
    return scenarios


def load_stores(path: Path) -> tuple[Store, ...]:
    document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows = document.get("stores") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise ScenarioError(f"{path}: expected 'stores:' with a list of stores")
    stores = []
    for n, row in enumerate(rows, 1):
        try:
            hours = str(row.pop("hours", "10:00-20:00"))
            opens, closes = (_hhmm(h) for h in hours.split("-"))
            stores.append(Store(opens=opens, closes=closes, **row))
        except (TypeError, ValueError, AttributeError) as err:
            raise ScenarioError(f"{path}: store #{n}: {err}") from err
    return tuple(stores)


def _hhmm(text: str) -> Any:
    from datetime import time

    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def _canonical(scenario: Scenario) -> bytes:
    return orjson.dumps(
        scenario.model_dump(mode="json", by_alias=True), option=orjson.OPT_SORT_KEYS
    )


class ScenarioArchive:
    """``<ns>:journey:defs`` — every (id, version) ever run, as canonical JSON."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis, self.key = redis, f"{namespace}:journey:defs"

    async def register(self, scenarios: list[Scenario]) -> list[Scenario]:
        """Archive ``scenarios``; return the archived older versions. Raises if a file
        changed a definition without bumping its version."""
        for scenario in scenarios:
            body = _canonical(scenario)
            if not await self.redis.hsetnx(self.key, scenario.key, body):
                stored = await self.redis.hget(self.key, scenario.key)
                if stored != body:
                    raise ScenarioError(
                        f"scenario {scenario.id!r} version {scenario.version} differs from the "
                        "version already running: bump 'version' when you edit a scenario"
                    )
        current = {s.key for s in scenarios}
        archived = []
        for key, stored_body in (await self.redis.hgetall(self.key)).items():
            name = key.decode() if isinstance(key, bytes) else key
            if name not in current:
                archived.append(Scenario.model_validate(orjson.loads(stored_body)))
        return archived
