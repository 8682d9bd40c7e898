"""The journey service's internal control messages (``<namespace>.journey.control``).

Each is addressed to the partition that owns the customer's row, so only that
partition's owner changes it: timer ticks from the sweep, the merge hand-off and
events that reached an absorbed customer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from schemas.base import EventTime, Frozen, Id
from schemas.events import RAW_EVENT_TYPES, EventEnvelope
from schemas.topics import TopicSpec

# -- what the journey reads of a customer event ----------------------------------------


class UsedFields(BaseModel):
    """What the journey engine reads of a raw event: its type, id, time and payload.
    Identity validated the whole event before it wrote customer.events; the journey
    validates what it reads (a bad one is dead-lettered) and skips the identifiers and
    the context (~3 µs of a product view's ~7.4 µs decode; the segmenter reads seen-only
    events the same way). A forwarded event carries these fields alone."""

    model_config = ConfigDict(frozen=True, extra="ignore", from_attributes=True)

    event_id: Id
    occurred_at: EventTime


def _used(cls: type[EventEnvelope]) -> type[UsedFields]:
    kind, payload = cls.model_fields["type"], cls.model_fields["payload"]
    return create_model(
        f"Used{cls.__name__}",
        __base__=UsedFields,
        __module__=__name__,
        type=(cast(Any, kind.annotation), kind),
        payload=(cast(Any, payload.annotation), payload),
    )


USED_TYPES: tuple[type[UsedFields], ...] = tuple(_used(cls) for cls in RAW_EVENT_TYPES)
# each raw event type's used fields, told apart by ``type`` as in ``RawEvent``
UsedEvent = Annotated[Union[USED_TYPES], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007


class UsedCustomerEvent(BaseModel):
    """A customer event as the journey reads it (see :class:`UsedFields`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    customer_id: Id
    event: UsedEvent


USED_CUSTOMER_EVENT: TypeAdapter[UsedCustomerEvent] = TypeAdapter(UsedCustomerEvent)


# -- control messages -------------------------------------------------------------------


class TickDue(Frozen):
    """One customer due (the sweep sent these before ticks were batched; still read)."""

    type: Literal["tick"] = "tick"
    customer_id: Id
    due: float = Field(description="The due time the sweep saw (epoch seconds)")


TICKS_PER_MESSAGE = 500


class TicksDue(Frozen):
    """Customers of one partition with a step due: the sweep sends them in batches, one
    message per ``TICKS_PER_MESSAGE`` customers."""

    type: Literal["ticks"] = "ticks"
    customer_ids: list[Id] = Field(min_length=1, max_length=TICKS_PER_MESSAGE)
    due: float = Field(description="The due time the sweep saw (epoch seconds)")


class FoldRequested(Frozen):
    type: Literal["fold_requested"] = "fold_requested"
    customer_id: Id = Field(description="The absorbed customer")
    survivor: Id
    survivor_partition: int = Field(ge=0)


class StateHandedOff(Frozen):
    type: Literal["handed_off"] = "handed_off"
    customer_id: Id = Field(description="The survivor")
    absorbed: Id
    row: str = Field(description="The absorbed customer's journey row (JSON)")


class EventForwarded(Frozen):
    type: Literal["forwarded"] = "forwarded"
    customer_id: Id = Field(description="The survivor")
    event: UsedEvent = Field(
        description="The fields the journey reads (a whole raw event, as forwarded before,"
        " reads the same)"
    )


ControlMessage = Annotated[
    TickDue | TicksDue | FoldRequested | StateHandedOff | EventForwarded,
    Field(discriminator="type"),
]
CONTROL_ADAPTER: TypeAdapter[ControlMessage] = TypeAdapter(ControlMessage)


def control_spec(partitions: int) -> TopicSpec:
    """Internal topic; as many partitions as customer.events (the same table)."""
    return TopicSpec(
        "journey.control", "customer_id", "ControlMessage", CONTROL_ADAPTER, partitions
    )
