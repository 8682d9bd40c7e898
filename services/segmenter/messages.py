"""The segmenter's internal control messages (topic ``<namespace>.segmenter.control``).

Each is addressed to the partition that owns the customer, so only that partition's
owner touches the customer's state: ticks from the sweep, the merge hand-off, forwarded
events of absorbed customers, and the injectable clock.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from schemas.base import Frozen, Id, Timestamp
from schemas.events import RawEvent


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


class ClockSet(Frozen):
    """Tests and operators move the worker's clock (event time) without waiting days."""

    type: Literal["clock"] = "clock"
    as_of: Timestamp


ControlMessage = Annotated[
    TickDue | TicksDue | FoldRequested | StateHandedOff | EventForwarded | ClockSet,
    Field(discriminator="type"),
]
CONTROL_ADAPTER: TypeAdapter[ControlMessage] = TypeAdapter(ControlMessage)


def control_topic(namespace: str) -> str:
    return f"{namespace}.segmenter.control"
