"""Raw events after identity resolution: the same fact, now owned by one customer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import SCHEMA_VERSION, Frozen, Id, Timestamp
from schemas.events import RawEvent


class CustomerEvent(Frozen):
    """A raw event re-keyed by the canonical customer id (``kizuna.customer.events``)."""

    customer_id: Id
    identity_version: int = Field(ge=0, description="Graph version the resolution saw")
    resolved_at: Timestamp
    event: RawEvent
    schema_version: Literal[1] = SCHEMA_VERSION
