"""Customer identifiers: the typed set an event carries, and how each kind is normalised.

Normalisation is deterministic and idempotent (``normalise(k, normalise(k, v)) ==
normalise(k, v)``) so the identity graph can key on the normalised value and a replay
of the same raw events always finds the same keys.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class IdentifierKind(StrEnum):
    """Identifier kinds in trust order: the first is the most trusted."""

    MEMBER_ID = "member_id"
    POS_CARD = "pos_card"
    MALL_CUSTOMER_ID = "mall_customer_id"
    EMAIL = "email"
    PHONE = "phone"
    LINE_USER_ID = "line_user_id"
    DEVICE_ID = "device_id"
    ANONYMOUS_ID = "anonymous_id"


TRUST_ORDER: tuple[IdentifierKind, ...] = tuple(IdentifierKind)
_NAMED: tuple[tuple[IdentifierKind, str], ...] = tuple((k, k.value) for k in TRUST_ORDER)
_KIND_OF = {name: kind for kind, name in _NAMED}

_RawId = Field(default=None, min_length=1, max_length=256)


class InvalidIdentifierError(ValueError):
    """An identifier value that cannot be normalised; the message names kind and reason."""

    def __init__(self, kind: IdentifierKind, value: str, reason: str) -> None:
        super().__init__(f"{kind.value} {value[:64]!r}: {reason}")
        self.kind = kind
        self.reason = reason


class Identifiers(BaseModel):
    """The identifiers an event carries, as sent (normalise with :func:`normalise`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    anonymous_id: str | None = _RawId
    member_id: str | None = _RawId
    email: str | None = _RawId
    phone: str | None = _RawId
    pos_card: str | None = _RawId
    device_id: str | None = _RawId
    line_user_id: str | None = _RawId
    mall_customer_id: str | None = Field(
        default=None,
        min_length=3,
        max_length=256,
        pattern=r"^[a-z0-9_-]{1,32}:.+$",
        description="Namespaced by mall, e.g. 'rakuten:abc123'.",
    )

    @model_validator(mode="after")
    def _at_least_one(self) -> Identifiers:
        values = self.__dict__
        for _, name in _NAMED:  # not present(): no list (every event's decode runs this)
            if values[name]:
                return self
        raise ValueError("at least one identifier is required")

    def present(self) -> list[tuple[IdentifierKind, str]]:
        """The identifiers that are set, in trust order."""
        values = self.__dict__
        return [(k, v) for k, name in _NAMED if (v := values[name])]

    @staticmethod
    def present_in(values: Mapping[str, str | None]) -> list[tuple[IdentifierKind, str]]:
        """:meth:`present` of identifiers read into a dict (``schemas.plain``): the
        absent ones may be missing, the keys are the model's fields (validated). Most
        events name one identifier: its pair is made without walking all eight kinds."""
        if len(values) == 1:
            for name, value in values.items():
                return [(_KIND_OF[name], value)] if value else []
        return [(k, v) for k, name in _NAMED if (v := values.get(name))]

    def routing_key(self) -> str:
        """Kafka key for raw topics: the most trusted identifier, so one person's events
        from one source stay in order on one partition."""
        for _, name in _NAMED:
            if value := getattr(self, name):
                return f"{name}:{_nfkc(value)}"
        raise ValueError("no identifier")  # unreachable: the model requires one


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_SEPARATORS = re.compile(r"[\s\-().\u30fc\u2010-\u2015]")
_LINE_USER = re.compile(r"^U[0-9a-f]{32}$")
_NAMESPACE = re.compile(r"^[a-z0-9_-]{1,32}$")


def _nfkc(value: str) -> str:
    # Full-width digits and letters (０９０, ＡＢＣ) are common in Japanese forms and POS data.
    return unicodedata.normalize("NFKC", value).strip()


def normalise_email(value: str) -> str:
    email = _nfkc(value).lower()
    if not _EMAIL.match(email):
        raise InvalidIdentifierError(IdentifierKind.EMAIL, value, "not an email address")
    return email


def normalise_phone(value: str, default_country_code: str = "81") -> str:
    """E.164: '090-1234-5678' -> '+819012345678'; '+81 90 …' and '0081…' also accepted."""
    digits = _PHONE_SEPARATORS.sub("", _nfkc(value))
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    elif digits.startswith("0"):
        digits = default_country_code + digits[1:]
    else:
        raise InvalidIdentifierError(
            IdentifierKind.PHONE, value, "needs a leading 0 (national) or + (international)"
        )
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise InvalidIdentifierError(IdentifierKind.PHONE, value, "not a phone number")
    return "+" + digits


def normalise_namespaced(kind: IdentifierKind, value: str, default_namespace: str | None) -> str:
    """'rakuten:ABC' stays; a bare id gets the default namespace (mall or LINE provider)."""
    text = _nfkc(value)
    namespace, sep, local = text.partition(":")
    if not sep:
        if default_namespace is None:
            raise InvalidIdentifierError(kind, value, "needs a namespace prefix 'ns:'")
        namespace, local = default_namespace, text
    namespace = namespace.lower()
    if not _NAMESPACE.match(namespace) or not local:
        raise InvalidIdentifierError(kind, value, "namespace must match [a-z0-9_-]{1,32}")
    if kind is IdentifierKind.LINE_USER_ID and not _LINE_USER.match(local):
        raise InvalidIdentifierError(kind, value, "LINE user ids are 'U' + 32 hex digits")
    return f"{namespace}:{local}"


def normalise_opaque(kind: IdentifierKind, value: str) -> str:
    text = _nfkc(value)
    if kind is IdentifierKind.POS_CARD:
        text = _PHONE_SEPARATORS.sub("", text)
    if not text:
        raise InvalidIdentifierError(kind, value, "empty after trimming")
    return text


def normalise(
    kind: IdentifierKind,
    value: str,
    *,
    default_country_code: str = "81",
    line_provider: str | None = None,
) -> str:
    """Normalise one identifier value or raise :class:`InvalidIdentifierError`."""
    match kind:
        case IdentifierKind.EMAIL:
            return normalise_email(value)
        case IdentifierKind.PHONE:
            return normalise_phone(value, default_country_code)
        case IdentifierKind.MALL_CUSTOMER_ID:
            return normalise_namespaced(kind, value, None)
        case IdentifierKind.LINE_USER_ID:
            return normalise_namespaced(kind, value, line_provider)
        case _:
            return normalise_opaque(kind, value)


def identifier_key(kind: IdentifierKind, normalised_value: str) -> str:
    """The one string that names an identifier everywhere (graph keys, links log keys)."""
    return f"{_VALUE_OF[kind]}:{normalised_value}"


_VALUE_OF = {k: k.value for k in IdentifierKind}
