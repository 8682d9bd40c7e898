"""Builders for identity unit tests: observations from plain identifier dicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.identifiers import Identifiers
from services.identity.domain.rules import Observation, Rules, observe

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def obs(
    event_id: str, minute: int, rules: Rules | None = None, source: str = "web", **ids: str
) -> Observation:
    return observe(
        event_id, T0 + timedelta(minutes=minute), source, Identifiers(**ids), rules or Rules()
    )
