"""The wire codec: models <-> JSON bytes. Validation happens here, at the edge.

Decoding goes straight from bytes through pydantic's JSON parser
(``validate_json``), so a value is parsed once and checked against the contract in
the same pass; orjson serves the free-form dicts around the models.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class JsonReader(Protocol[T_co]):
    """What decoding needs of a reader: a ``TypeAdapter``, or ``schemas.plain``'s."""

    def validate_json(self, data: bytes, /) -> T_co: ...


DEFAULT_MAX_BYTES = 1_000_000

DecodeReason = Literal["undecodable", "invalid", "unknown_type", "too_large"]


class DecodeError(ValueError):
    """Bytes that are not a valid message; ``str(err)`` names each bad field."""

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: DecodeReason = reason
        self.detail = detail


def encode(model: BaseModel) -> bytes:
    """Compact JSON bytes; unset optional fields (None) are left out, ISO 8601 datetimes."""
    return model.__pydantic_serializer__.to_json(model, exclude_none=True)


def decode(adapter: JsonReader[T], raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> T:
    """Validate ``raw`` JSON bytes against ``adapter`` or raise :class:`DecodeError`."""
    if len(raw) > max_bytes:
        raise DecodeError("too_large", f"message is {len(raw)} bytes, limit is {max_bytes}")
    try:
        return adapter.validate_json(raw)
    except ValidationError as err:
        raise _decode_error(err) from None


def _decode_error(err: ValidationError) -> DecodeError:
    errors = err.errors(include_url=False)
    kinds = {e["type"] for e in errors}
    if kinds & {"json_invalid", "json_type", "invalid_utf8"}:
        return DecodeError("undecodable", describe(errors))
    if "union_tag_invalid" in kinds or "union_tag_not_found" in kinds:
        return DecodeError("unknown_type", describe(errors))
    return DecodeError("invalid", describe(errors))


def describe(errors: list[Any]) -> str:
    """'payload.money.total: Input should be a valid integer (got 1980.5)'; one per line."""
    lines = []
    for error in errors[:20]:
        location = ".".join(str(part) for part in error["loc"]) or "(message)"
        got = error.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {_short(got)})"
        lines.append(f"{location}: {error['msg']}{shown}")
    if len(errors) > 20:
        lines.append(f"... and {len(errors) - 20} more errors")
    return "\n".join(lines)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def dumps(value: Any) -> bytes:
    """Free-form JSON (dicts, lists) with orjson; datetimes must already be tz-aware."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise DecodeError("undecodable", f"not JSON: {err}") from None
