"""Building blocks shared by every schema module: frozen models, exact money, ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION: Final = 1


class Frozen(BaseModel):
    """Immutable, closed: an unknown field is an error, not silently kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Yen = Annotated[int, Field(strict=True, ge=0, le=10**12, description="Integer yen")]
SignedYen = Annotated[int, Field(strict=True, ge=-(10**12), le=10**12)]
Quantity = Annotated[int, Field(strict=True, ge=1, le=100_000)]
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f]+$")]
Name = Annotated[str, Field(min_length=1, max_length=256)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Timestamp = AwareDatetime

EARLIEST_EVENT_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME: Final = datetime(2100, 1, 1, tzinfo=UTC)
EventTime = Annotated[AwareDatetime, Field(ge=EARLIEST_EVENT_TIME, lt=LATEST_EVENT_TIME)]
"""An event's time. Zero values (0001-01-01, 1970-01-01) and year 9999 are sender bugs,
and dates near datetime's limits overflow day arithmetic downstream (segmenter). No bound
relative to received_at: the simulator runs a clock hours ahead of the wall clock."""
