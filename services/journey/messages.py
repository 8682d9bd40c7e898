"""The journey service's internal control messages (``<namespace>.journey.control``).

Each is addressed to the partition that owns the customer's row, so only that
partition's owner changes it: timer ticks from the sweep, the merge hand-off and
events that reached an absorbed customer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.base import Frozen, Id
from schemas.events import RawEvent
from schemas.topics import TopicSpec


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
    event: RawEvent


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
