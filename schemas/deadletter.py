"""Dead letters: input that could not be processed, kept with the reason."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import SCHEMA_VERSION, Frozen, Timestamp

DeadLetterReason = Literal[
    "undecodable", "invalid", "unknown_type", "rejected", "processing_failed", "too_large"
]


class DeadLetter(Frozen):
    reason: DeadLetterReason
    error: str = Field(max_length=8192, description="Human-readable: which field, what is wrong")
    service: str = Field(max_length=64)
    source_topic: str | None = Field(default=None, max_length=255)
    source_partition: int | None = Field(default=None, ge=0)
    source_offset: int | None = Field(default=None, ge=0)
    key_b64: str | None = Field(default=None, description="The original key, base64")
    original_b64: str = Field(description="The original bytes, untouched, base64")
    occurred_at: Timestamp
    schema_version: Literal[1] = SCHEMA_VERSION

    @classmethod
    def of(
        cls,
        original: bytes,
        *,
        reason: DeadLetterReason,
        error: str,
        service: str,
        occurred_at: datetime,
        key: bytes | None = None,
        source_topic: str | None = None,
        source_partition: int | None = None,
        source_offset: int | None = None,
    ) -> DeadLetter:
        return cls(
            reason=reason,
            error=error[:8192],
            service=service,
            source_topic=source_topic,
            source_partition=source_partition,
            source_offset=source_offset,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            original_b64=base64.b64encode(original).decode(),
            occurred_at=occurred_at,
        )

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)

    @property
    def key(self) -> bytes | None:
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None
