"""Identity graph facts: links (the source of truth) and the changes they cause."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.base import SCHEMA_VERSION, Frozen, Id, Timestamp
from schemas.identifiers import IdentifierKind


class IdentifierRef(Frozen):
    kind: IdentifierKind
    value: str = Field(min_length=1, max_length=320, description="Normalised value")


class IdentityLinked(Frozen):
    """A fact the graph is built from (``identity.links``, append-only, the source of truth).

    ``linked_to`` is None when an identifier was first seen; otherwise the event showed
    ``identifier`` together with ``linked_to``. Redis is a view: folding every link (and
    revocation) with the merge rules rebuilds it exactly, in any order.
    """

    type: Literal["linked"] = "linked"
    link_id: Id = Field(description="Stable id of the identifier pair (or the identifier)")
    identifier: IdentifierRef
    linked_to: IdentifierRef | None = None
    event_id: Id = Field(description="The raw event that produced the link")
    source: str = Field(max_length=64)
    occurred_at: Timestamp
    schema_version: Literal[1] = SCHEMA_VERSION


class IdentityLinkRevoked(Frozen):
    """An operator revoked a link; the graph recomputes without it."""

    type: Literal["revoked"] = "revoked"
    link_id: Id
    operator: str = Field(max_length=128)
    reason: str = Field(max_length=1024)
    occurred_at: Timestamp
    schema_version: Literal[1] = SCHEMA_VERSION


IdentityLinkRecord = Annotated[IdentityLinked | IdentityLinkRevoked, Field(discriminator="type")]


class _Change(Frozen):
    customer_id: Id
    version: int = Field(ge=1, description="Monotonic version of this customer's identity")
    occurred_at: Timestamp
    schema_version: Literal[1] = SCHEMA_VERSION


class CustomersMerged(_Change):
    """``absorbed`` customers now belong to ``customer_id`` (the survivor)."""

    type: Literal["merged"] = "merged"
    absorbed: tuple[Id, ...] = Field(min_length=1)
    cause_event_id: Id


class IdentifierAdded(_Change):
    type: Literal["identifier_added"] = "identifier_added"
    identifier: IdentifierRef
    cause_event_id: Id


class IdentityConflictRecorded(_Change):
    """A link that would have merged two customers holding different unique ids."""

    type: Literal["conflict"] = "conflict"
    other_customer_id: Id
    identifier: IdentifierRef
    reason: str = Field(max_length=512)
    cause_event_id: Id


class CustomerSplit(_Change):
    """``customer_id`` became the customers ``into`` (a revoked link, or a late event
    that showed the links in a different order)."""

    type: Literal["split"] = "split"
    into: tuple[Id, ...] = Field(min_length=2)
    revoked_link_id: Id | None = None
    cause_event_id: Id | None = None


IdentityChange = Annotated[
    CustomersMerged | IdentifierAdded | IdentityConflictRecorded | CustomerSplit,
    Field(discriminator="type"),
]

IDENTITY_CHANGE_ADAPTER: TypeAdapter[IdentityChange] = TypeAdapter(IdentityChange)
IDENTITY_LINK_ADAPTER: TypeAdapter[IdentityLinkRecord] = TypeAdapter(IdentityLinkRecord)
