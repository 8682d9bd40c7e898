"""The segmenter's internal control messages (topic ``<namespace>.segmenter.control``).

Each is addressed to the partition that owns the customer, so only that partition's
owner touches the customer's state: ticks from the sweep, the merge hand-off, forwarded
events of absorbed customers, and the injectable clock.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from runtime.intake import Narrow
from schemas.base import EventTime, Frozen, Id, Timestamp, new_tuple
from schemas.customer import ID_PATTERN as _ID
from schemas.customer import Headers, routing_of
from schemas.events import RAW_EVENT_TYPES, RawEvent, event_type_name
from services.segmenter.domain.calendar import epoch
from services.segmenter.domain.facts import FACT_TYPES, Seen

SEEN_TYPES = frozenset(event_type_name(cls) for cls in RAW_EVENT_TYPES) - FACT_TYPES


class _SeenFields(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str
    event_id: Id
    occurred_at: EventTime


class SeenCustomerEvent(BaseModel):
    """A customer event read for what the segmenter uses of a type outside FACT_TYPES:
    its customer, id and time. Identity validated the whole event before it wrote it;
    the segmenter validates the fields it reads (a bad one sends the message through
    the full decoder, and so to the dead letters)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    customer_id: Id
    event: _SeenFields

    def seen(self) -> Seen:
        return Seen(self.event.event_id, epoch(self.event.occurred_at))


class SeenRouted(NamedTuple):
    """The same, from the message's key and routing headers alone (no body parsed)."""

    customer_id: str
    event: Seen


def seen_routed(key: bytes | None, headers: Headers | None) -> SeenRouted | Literal[False] | None:
    """A customer event of a type outside FACT_TYPES, from its key (the customer id)
    and identity's routing headers; False if they say it is a fact (decode it in full),
    None if they cannot say (read the body)."""
    routing = routing_of(headers)
    if routing is None or not key:
        return None
    if routing.type in FACT_TYPES:
        return False
    if routing.type not in SEEN_TYPES:
        return None  # unknown: the decoder dead-letters it
    try:
        customer_id = key.decode()
    except UnicodeDecodeError:
        return None
    if _ID.fullmatch(customer_id) is None:
        return None
    seen = new_tuple(Seen, (routing.event_id, int(routing.occurred_at)))
    return new_tuple(SeenRouted, (customer_id, seen))


def _seen_only(got: SeenCustomerEvent | SeenRouted) -> bool:
    return isinstance(got, SeenRouted) or got.event.type in SEEN_TYPES


SEEN_ONLY: Narrow[SeenCustomerEvent | SeenRouted] = Narrow(
    cast(TypeAdapter[SeenCustomerEvent | SeenRouted], TypeAdapter(SeenCustomerEvent)),
    _seen_only,
    seen_routed,
)


class TickDue(Frozen):
    """One customer due (the sweep sent these before ticks were batched; still read)."""

    type: Literal["tick"] = "tick"
    customer_id: Id


TICKS_PER_MESSAGE = 500


class TicksDue(Frozen):
    """Customers of one partition whose standing may have changed by time alone: the
    sweep sends them in batches, one message per ``TICKS_PER_MESSAGE`` customers."""

    type: Literal["ticks"] = "ticks"
    customer_ids: list[Id] = Field(min_length=1, max_length=TICKS_PER_MESSAGE)


class FoldRequested(Frozen):
    type: Literal["fold_requested"] = "fold_requested"
    customer_id: Id = Field(description="The absorbed customer")
    survivor: Id
    survivor_partition: int = Field(ge=0)
    version: int = Field(ge=1)


class StateHandedOff(Frozen):
    type: Literal["handed_off"] = "handed_off"
    customer_id: Id = Field(description="The survivor")
    absorbed: Id
    facts: dict[str, Any]


class EventForwarded(Frozen):
    type: Literal["forwarded"] = "forwarded"
    customer_id: Id = Field(description="The survivor")
    event: RawEvent


class SeenForwarded(Frozen):
    """An absorbed customer's event of a type that only moves last_seen (the intake
    read its time alone): the survivor applies it as seen at ``at``."""

    type: Literal["seen_forwarded"] = "seen_forwarded"
    customer_id: Id = Field(description="The survivor")
    event_id: Id
    at: Timestamp


class ClockSet(Frozen):
    """Tests and operators move the worker's clock (event time) without waiting days."""

    type: Literal["clock"] = "clock"
    as_of: Timestamp


ControlMessage = Annotated[
    TickDue | TicksDue | FoldRequested | StateHandedOff | EventForwarded | SeenForwarded | ClockSet,
    Field(discriminator="type"),
]
CONTROL_ADAPTER: TypeAdapter[ControlMessage] = TypeAdapter(ControlMessage)


def control_topic(namespace: str) -> str:
    return f"{namespace}.segmenter.control"
