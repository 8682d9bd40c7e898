"""Journey facts other systems read: a journey's goal was reached."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import SCHEMA_VERSION, Frozen, Id, Timestamp, Yen


class JourneyConverted(Frozen):
    """An order (online or in a store) inside a journey's attribution window after entry.

    ``conversion_id`` is derived from the journey instance, so a replay publishes the
    same conversion again rather than a second one; ``variant`` is ``holdout`` for the
    control group, which is what makes the journey's incremental effect measurable.
    """

    conversion_id: Id
    customer_id: Id
    journey_id: Id
    instance_id: Id
    variant: str = Field(max_length=64)
    order_id: Id | None = None
    amount: Yen
    recovered: bool = Field(description="The order came after a message of the journey")
    occurred_at: Timestamp
    schema_version: Literal[1] = SCHEMA_VERSION
