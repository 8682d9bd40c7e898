"""Segment changes: a customer moved between RFM segments or CPM groups."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import SCHEMA_VERSION, Frozen, Id, Timestamp

Score = int


class RfmScores(Frozen):
    recency: Score = Field(ge=1, le=5)
    frequency: Score = Field(ge=1, le=5)
    monetary: Score = Field(ge=1, le=5)


class SegmentChanged(Frozen):
    customer_id: Id
    dimension: Literal["rfm", "cpm"]
    from_segment: str | None = Field(
        default=None, max_length=64, description="None when first scored"
    )
    to_segment: str = Field(max_length=64)
    reason: Literal["event", "time", "merge", "split", "thresholds"]
    version: int = Field(ge=1, description="Per-customer segment state version")
    thresholds_version: int = Field(ge=0)
    as_of: Timestamp
    scores: RfmScores | None = None
    schema_version: Literal[1] = SCHEMA_VERSION
