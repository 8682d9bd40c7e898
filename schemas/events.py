"""Raw events: what upstream systems (web tag, app, POS, mall EC, LINE) tell kizuna.

Every event is an envelope (:class:`EventEnvelope`) plus a ``payload`` whose shape is
fixed by the ``type`` literal; :data:`RawEvent` is the discriminated union of them all.
Names follow the Segment e-commerce spec in the past tense (``Product Added`` ->
``product_added``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter, model_validator

from schemas.base import SCHEMA_VERSION, EventTime, Frozen, Id
from schemas.identifiers import Identifiers
from schemas.payloads import (
    AppOpenedPayload,
    CartChangedPayload,
    CartPayload,
    ConsentPayload,
    CustomTrackedPayload,
    IdentifiedPayload,
    LineAccountLinkedPayload,
    LinePayload,
    LocationReportedPayload,
    OrderCancelledPayload,
    OrderCompletedPayload,
    OrderRefundedPayload,
    PageViewedPayload,
    PosPurchasedPayload,
    ProductViewedPayload,
    ProfileUpdatedPayload,
)


class Source(StrEnum):
    WEB = "web"
    APP = "app"
    POS = "pos"
    MALL = "mall"
    LINE = "line"
    CRM = "crm"
    IMPORT = "import"


class Campaign(Frozen):
    source: str | None = Field(default=None, max_length=256)
    medium: str | None = Field(default=None, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    term: str | None = Field(default=None, max_length=256)
    content: str | None = Field(default=None, max_length=256)


class EventContext(Frozen):
    """Where an event happened. Extra keys from SDKs are kept, not rejected."""

    model_config = ConfigDict(frozen=True, extra="allow")

    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=1024)
    locale: str | None = Field(default=None, max_length=32)
    timezone: str | None = Field(default=None, max_length=64)
    page_url: str | None = Field(default=None, max_length=2048)
    campaign: Campaign | None = None
    app_version: str | None = Field(default=None, max_length=64)
    store_id: Id | None = None

    @model_validator(mode="after")
    def _null_is_absent(self) -> EventContext:
        """An SDK's ``"device": null`` is no device: dropped here as encoding drops it,
        so an event read back from Kafka equals the one written (dedup, replays). (After
        validation, on the extra keys alone: a "before" validator made every event's
        context a Python dict first, ~0.9 µs of each event's ~8 µs decode.)"""
        extra = self.__pydantic_extra__
        if extra and None in extra.values():
            for key in [key for key, value in extra.items() if value is None]:
                del extra[key]
        return self


class EventEnvelope(Frozen):
    event_id: Id = Field(description="Idempotency key: the same event_id is the same fact")
    occurred_at: EventTime = Field(description="Event time at the source (tz-aware)")
    received_at: EventTime = Field(description="When kizuna's edge first saw it")
    source: Source
    identifiers: Identifiers
    context: EventContext = EventContext()
    schema_version: Literal[1] = SCHEMA_VERSION


# --- the events ---------------------------------------------------------------------------


class PageViewed(EventEnvelope):
    type: Literal["page_viewed"] = "page_viewed"
    payload: PageViewedPayload


class ProductViewed(EventEnvelope):
    type: Literal["product_viewed"] = "product_viewed"
    payload: ProductViewedPayload


class ProductAdded(EventEnvelope):
    type: Literal["product_added"] = "product_added"
    payload: CartChangedPayload


class ProductRemoved(EventEnvelope):
    type: Literal["product_removed"] = "product_removed"
    payload: CartChangedPayload


class CartViewed(EventEnvelope):
    type: Literal["cart_viewed"] = "cart_viewed"
    payload: CartPayload


class CheckoutStarted(EventEnvelope):
    type: Literal["checkout_started"] = "checkout_started"
    payload: CartPayload


class OrderCompleted(EventEnvelope):
    type: Literal["order_completed"] = "order_completed"
    payload: OrderCompletedPayload


class OrderCancelled(EventEnvelope):
    type: Literal["order_cancelled"] = "order_cancelled"
    payload: OrderCancelledPayload


class OrderRefunded(EventEnvelope):
    type: Literal["order_refunded"] = "order_refunded"
    payload: OrderRefundedPayload


class PosPurchased(EventEnvelope):
    type: Literal["pos_purchased"] = "pos_purchased"
    payload: PosPurchasedPayload


class AppOpened(EventEnvelope):
    type: Literal["app_opened"] = "app_opened"
    payload: AppOpenedPayload


class LocationReported(EventEnvelope):
    type: Literal["location_reported"] = "location_reported"
    payload: LocationReportedPayload


class LineFollowed(EventEnvelope):
    type: Literal["line_followed"] = "line_followed"
    payload: LinePayload


class LineUnfollowed(EventEnvelope):
    type: Literal["line_unfollowed"] = "line_unfollowed"
    payload: LinePayload


class LineAccountLinked(EventEnvelope):
    type: Literal["line_account_linked"] = "line_account_linked"
    payload: LineAccountLinkedPayload


class Identified(EventEnvelope):
    type: Literal["identified"] = "identified"
    payload: IdentifiedPayload = IdentifiedPayload()


class ConsentGranted(EventEnvelope):
    type: Literal["consent_granted"] = "consent_granted"
    payload: ConsentPayload


class ConsentRevoked(EventEnvelope):
    type: Literal["consent_revoked"] = "consent_revoked"
    payload: ConsentPayload


class ProfileUpdated(EventEnvelope):
    type: Literal["profile_updated"] = "profile_updated"
    payload: ProfileUpdatedPayload


class CustomTracked(EventEnvelope):
    """Any tracked event kizuna has no model for: kept, never dropped."""

    type: Literal["custom_tracked"] = "custom_tracked"
    payload: CustomTrackedPayload


RawEvent = Annotated[
    PageViewed
    | ProductViewed
    | ProductAdded
    | ProductRemoved
    | CartViewed
    | CheckoutStarted
    | OrderCompleted
    | OrderCancelled
    | OrderRefunded
    | PosPurchased
    | AppOpened
    | LocationReported
    | LineFollowed
    | LineUnfollowed
    | LineAccountLinked
    | Identified
    | ConsentGranted
    | ConsentRevoked
    | ProfileUpdated
    | CustomTracked,
    Field(discriminator="type"),
]

RAW_EVENT_ADAPTER: TypeAdapter[RawEvent] = TypeAdapter(RawEvent)

RAW_EVENT_TYPES: tuple[type[EventEnvelope], ...] = (
    PageViewed,
    ProductViewed,
    ProductAdded,
    ProductRemoved,
    CartViewed,
    CheckoutStarted,
    OrderCompleted,
    OrderCancelled,
    OrderRefunded,
    PosPurchased,
    AppOpened,
    LocationReported,
    LineFollowed,
    LineUnfollowed,
    LineAccountLinked,
    Identified,
    ConsentGranted,
    ConsentRevoked,
    ProfileUpdated,
    CustomTracked,
)


def event_type_name(cls: type[EventEnvelope]) -> str:
    """The ``type`` literal of an event class."""
    return str(cls.model_fields["type"].default)
