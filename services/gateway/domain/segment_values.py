"""Reading Segment JSON values: ids, integer yen, strings — each failure names its field."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from schemas.codec import describe
from schemas.deadletter import DeadLetterReason

_ID = re.compile(r"^[^\s\x00-\x1f]{1,128}$")
MAX_NESTING = 64
"""Levels of objects/lists in one Segment call. Workers parse events with pydantic, whose
JSON parser stops at about 200 levels: deeper would be accepted here and lost there."""

# kizuna field paths in pydantic errors, renamed to what the Segment sender wrote.
_SEGMENT_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("occurred_at",): ("timestamp",),
    ("event_id",): ("messageId",),
    ("identifiers", "member_id"): ("userId",),
    ("identifiers", "anonymous_id"): ("anonymousId",),
    ("identifiers", "device_id"): ("context", "device", "id"),
    ("identifiers", "email"): ("traits", "email"),
    ("identifiers", "phone"): ("traits", "phone"),
}


def _segment_location(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    for size in (2, 1):
        renamed = _SEGMENT_NAMES.get(tuple(str(part) for part in loc[:size]))
        if renamed is not None:
            return renamed + loc[size:]
    return loc


class MappingError(ValueError):
    """One event that cannot become a kizuna event; ``str()`` is 'field: problem'."""

    def __init__(self, field: str, problem: str, reason: DeadLetterReason = "invalid") -> None:
        super().__init__(f"{field}: {problem}")
        self.reason: DeadLetterReason = reason

    @classmethod
    def from_validation(cls, err: ValidationError) -> MappingError:
        errors = [
            {**error, "loc": _segment_location(error["loc"])}
            for error in err.errors(include_url=False)
        ]
        error = cls("event", "invalid")
        error.args = (describe(errors),)
        return error


def object_at(value: Any, field: str) -> dict[str, Any]:
    """A JSON object (None counts as empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(field, f"must be an object, got {type(value).__name__}")
    return value


def optional_id(value: Any, field: str) -> str | None:
    """An identifier as Segment SDKs send it: a string or a number; '' and null are absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MappingError(field, f"must be a string, got {type(value).__name__}")
    return str(value)


def required_id(value: Any, field: str) -> str:
    text = optional_id(value, field)
    if text is None:
        raise MappingError(field, "is required")
    if not _ID.match(text):
        raise MappingError(field, "must be 1-128 characters without spaces or control characters")
    return text


def optional_text(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MappingError(field, f"must be a string, got {type(value).__name__}")
    return value


def yen(value: Any, field: str, currency: str) -> int:
    """Integer yen. 1980.0 is 1980 for JPY; 1980.5 (or any fraction) is an error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        if currency != "JPY":
            raise MappingError(field, f"must be an integer amount for {currency} (got {value})")
        if value.is_integer():
            return int(value)
        raise MappingError(field, f"must be whole yen (got {value})")
    raise MappingError(field, f"must be a number (got {value!r:.40})")


def optional_yen(value: Any, field: str, currency: str) -> int | None:
    return None if value is None else yen(value, field, currency)


def count(value: Any, field: str) -> int:
    """A quantity: an integer (an integral float such as 2.0 is accepted)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise MappingError(field, f"must be an integer (got {value!r:.40})")


def currency_of(properties: dict[str, Any]) -> str:
    value = properties.get("currency") or "JPY"
    if not isinstance(value, str):
        raise MappingError("properties.currency", "must be an ISO 4217 code such as JPY")
    return value.upper()


def first_present(mapping: dict[str, Any], *keys: str) -> tuple[str, Any] | None:
    """The first of ``keys`` whose value is not None, with its key."""
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return key, value
    return None


def check_nesting(value: Any, field: str, limit: int = MAX_NESTING) -> None:
    """Refuse JSON nested deeper than ``limit`` levels (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            raise MappingError(field, f"is nested deeper than {limit} levels")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
