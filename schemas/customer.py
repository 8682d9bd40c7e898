"""Raw events after identity resolution: the same fact, now owned by one customer."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal, NamedTuple

from pydantic import Field

from schemas.base import (
    EARLIEST_EVENT_TIME,
    LATEST_EVENT_TIME,
    SCHEMA_VERSION,
    Frozen,
    Id,
    Timestamp,
)
from schemas.events import RawEvent


class CustomerEvent(Frozen):
    """A raw event re-keyed by the canonical customer id (``kizuna.customer.events``)."""

    customer_id: Id
    identity_version: int = Field(ge=0, description="Graph version the resolution saw")
    resolved_at: Timestamp
    event: RawEvent
    schema_version: Literal[1] = SCHEMA_VERSION


# -- routing headers ---------------------------------------------------------------------
# identity puts the event's type, id and time on each customer event as Kafka headers, so
# a stage can route an event, or use these fields alone, without parsing its JSON body
# (~4.6 µs for the average event, a tenth of a segmenter worker's time per event).

TYPE_HEADER = "kizuna-type"
ID_HEADER = "kizuna-event-id"
TIME_HEADER = "kizuna-occurred-at"

HeaderValue = str | bytes | None
HeaderList = list[tuple[str, HeaderValue]]  # as confluent-kafka takes and gives them
Headers = Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue]
ID_PATTERN = re.compile(r"[^\s\x00-\x1f]{1,128}")  # schemas.base.Id, for fullmatch


class Routing(NamedTuple):
    type: str
    event_id: str
    occurred_at: float  # epoch seconds


def routing_headers(event: RawEvent) -> HeaderList:
    """The headers identity writes with ``event`` on customer.events."""
    return [
        (TYPE_HEADER, event.type.encode()),
        (ID_HEADER, event.event_id.encode()),
        (TIME_HEADER, event.occurred_at.isoformat().encode()),
    ]


def routing_of(headers: Headers | None) -> Routing | None:
    """The routing headers, validated as the body's fields would be (an id as ``Id``, a
    time as ``EventTime``); None when any is missing or invalid: read the body then."""
    if not headers:
        return None
    found = dict(headers.items() if isinstance(headers, Mapping) else headers)
    kind, event_id, at = found.get(TYPE_HEADER), found.get(ID_HEADER), found.get(TIME_HEADER)
    try:
        text_type, text_id = _text(kind), _text(event_id)
        when = datetime.fromisoformat(_text(at))
    except (ValueError, TypeError):  # missing, not UTF-8, not an ISO time
        return None
    if when.tzinfo is None or not EARLIEST_EVENT_TIME <= when < LATEST_EVENT_TIME:
        return None
    if ID_PATTERN.fullmatch(text_id) is None:
        return None
    return Routing(text_type, text_id, when.timestamp())


def _text(value: HeaderValue) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError("no value")
