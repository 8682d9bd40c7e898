"""The merge rules a shop can trust: trust order, unique kinds, caps, blocklist, shared devices.

Everything here is pure and configurable; defaults follow the domain reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from schemas.base import new_tuple
from schemas.identifiers import (
    TRUST_ORDER,
    IdentifierKind,
    InvalidIdentifierError,
    identifier_key,
    normalise,
)

K = IdentifierKind
DAY_MS = 86_400_000

DEFAULT_BLOCKED_VALUES = frozenset(
    {"", "0", "-1", "null", "none", "nil", "undefined", "anonymous", "unknown", "n/a", "test"}
)
DEFAULT_BLOCKED_PATTERNS = (r"^0+$", r"^[0-]+$", r"^(null|undefined|none)@", r"^x+$")


@dataclass(frozen=True)
class Cap:
    """At most ``limit`` values of one kind per customer (first seen within ``window_days``)."""

    limit: int
    window_days: int | None = None


@dataclass(frozen=True)
class Rules:
    unique_kinds: frozenset[IdentifierKind] = frozenset({K.MEMBER_ID})
    caps: dict[IdentifierKind, Cap] = field(
        default_factory=lambda: {K.ANONYMOUS_ID: Cap(5, window_days=7), K.EMAIL: Cap(10)}
    )
    max_identifiers: int = 1000
    max_merges: int = 100
    blocked_values: frozenset[str] = DEFAULT_BLOCKED_VALUES
    blocked_patterns: tuple[str, ...] = DEFAULT_BLOCKED_PATTERNS
    shared_devices: frozenset[str] = frozenset()
    shared_device_patterns: tuple[str, ...] = (r"^store-tablet-",)
    default_country_code: str = "81"
    line_provider: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_verdicts", {})
        object.__setattr__(self, "_blocked", [re.compile(p, re.I) for p in self.blocked_patterns])
        object.__setattr__(
            self, "_shared", [re.compile(p, re.I) for p in self.shared_device_patterns]
        )

    def is_blocked(self, value: str) -> bool:
        lowered = value.strip().lower()
        return lowered in self.blocked_values or any(
            p.search(lowered)
            for p in self._blocked  # type: ignore[attr-defined]
        )

    def is_shared_device(self, kind: IdentifierKind, value: str) -> bool:
        if kind is not K.DEVICE_ID:
            return False
        return value in self.shared_devices or any(
            p.search(value)
            for p in self._shared  # type: ignore[attr-defined]
        )


TRUST_RANK = {kind: rank for rank, kind in enumerate(TRUST_ORDER)}


class Ident(NamedTuple):
    kind: IdentifierKind
    value: str
    key: str  # "kind:value", the graph's name for it

    @classmethod
    def of(cls, kind: IdentifierKind, value: str) -> Ident:
        return cls(kind, value, identifier_key(kind, value))


class Observation(NamedTuple):
    """What one raw event says about identity, normalised and filtered by the rules."""

    event_id: str
    at_ms: int
    source: str
    idents: tuple[Ident, ...]  # bridging identifiers, most trusted first
    rejected: tuple[tuple[str, str, str], ...] = ()  # (kind, value, why) dropped by the rules

    @property
    def primary(self) -> Ident:
        return self.idents[0]


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


_CACHE_LIMIT = 200_000
Verdict = tuple[str, "Ident | None", str]  # ("keep" | "shared" | "rejected", ident, why)


def classify(rules: Rules, kind: IdentifierKind, raw: str) -> Verdict:
    """What the rules make of one raw identifier; memoised, since most ids recur."""
    cache: dict[tuple[IdentifierKind, str], Verdict] = rules._verdicts  # type: ignore[attr-defined]
    verdict = cache.get((kind, raw))
    if verdict is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        verdict = cache[(kind, raw)] = _classify(rules, kind, raw)
    return verdict


def _classify(rules: Rules, kind: IdentifierKind, raw: str) -> Verdict:
    try:
        value = normalise(
            kind,
            raw,
            default_country_code=rules.default_country_code,
            line_provider=rules.line_provider,
        )
    except InvalidIdentifierError as err:
        return ("rejected", None, f"invalid: {err.reason}")
    local = value.partition(":")[2] if kind in (K.MALL_CUSTOMER_ID, K.LINE_USER_ID) else value
    if rules.is_blocked(local):
        return ("rejected", None, "blocked")
    if rules.is_shared_device(kind, value):
        return ("shared", Ident.of(kind, value), "shared device: attached, not bridged")
    return ("keep", Ident.of(kind, value), "")


def observe(
    event_id: str,
    occurred_at: datetime,
    source: str,
    identifiers: Iterable[tuple[IdentifierKind, str]],
    rules: Rules,
) -> Observation:
    """Normalise, drop junk, keep shared devices out of bridging; most trusted first.
    ``identifiers``: the event's, in trust order (``Identifiers.present()``)."""
    if type(identifiers) is list and len(identifiers) == 1:  # most events: one, kept
        what, ident, _ = classify(rules, *identifiers[0])
        if what == "keep":
            return new_tuple(Observation, (event_id, to_ms(occurred_at), source, (ident,), ()))
    kept: list[Ident] = []
    shared: list[Ident] = []
    rejected: list[tuple[str, str, str]] = []
    for kind, raw in identifiers:
        what, ident, why = classify(rules, kind, raw)
        if ident is None:
            rejected.append((kind.value, raw, why))
        elif what == "shared":
            shared.append(ident)
        elif ident not in kept:
            kept.append(ident)
    if not kept and shared:
        kept = shared[:1]  # a shared device alone still names someone: its own profile
    elif shared:
        rejected.extend(
            (i.kind.value, i.value, "shared device: attached, not bridged") for i in shared
        )
    if len(kept) > 1:
        kept.sort(key=lambda i: (TRUST_RANK[i.kind], i.value))
    fields = (event_id, to_ms(occurred_at), source, tuple(kept), tuple(rejected))
    return new_tuple(Observation, fields)  # one per event: without the Python-level __new__


def parse_identifier(text: str, rules: Rules) -> str:
    """'email:Hanako@Example.jp' -> 'email:hanako@example.jp' (raises ValueError)."""
    kind_text, sep, value = text.partition(":")
    if not sep:
        raise ValueError(f"expected '<kind>:<value>', got {text!r}")
    try:
        kind = IdentifierKind(kind_text)
    except ValueError:
        kinds = ", ".join(k.value for k in IdentifierKind)
        raise ValueError(f"unknown identifier kind {kind_text!r} (one of {kinds})") from None
    normalised = normalise(
        kind,
        value,
        default_country_code=rules.default_country_code,
        line_provider=rules.line_provider,
    )
    return identifier_key(kind, normalised)
