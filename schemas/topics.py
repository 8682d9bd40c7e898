"""The topic catalogue: every topic kizuna owns, its key, value type and settings.

Topic names are ``<namespace>.<suffix>``; the namespace is ``kizuna`` in production and
unique per test, so tests get fresh topics without touching each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter

from schemas.customer import CustomerEvent
from schemas.deadletter import DeadLetter
from schemas.events import RAW_EVENT_ADAPTER
from schemas.identity import IDENTITY_CHANGE_ADAPTER, IDENTITY_LINK_ADAPTER
from schemas.journeys import JourneyConverted
from schemas.notifications import NotificationOutcome, SendNotification
from schemas.segments import SegmentChanged

DEFAULT_NAMESPACE = "kizuna"
FOREVER = -1
WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    suffix: str
    key: str
    value: str
    adapter: TypeAdapter[Any]
    partitions: int = 8
    cleanup: Literal["delete", "compact"] = "delete"
    retention_ms: int = FOREVER

    def name(self, namespace: str = DEFAULT_NAMESPACE) -> str:
        return f"{namespace}.{self.suffix}"

    def config(self) -> dict[str, str]:
        return {"cleanup.policy": self.cleanup, "retention.ms": str(self.retention_ms)}


def _raw(area: str) -> TopicSpec:
    return TopicSpec(
        suffix=f"raw.{area}",
        key="strongest identifier key, e.g. member_id:123 (keeps one person's events in order)",
        value="RawEvent",
        adapter=RAW_EVENT_ADAPTER,
        retention_ms=FOREVER,
    )


RAW_WEB = _raw("web")
RAW_CART = _raw("cart")
RAW_ORDER = _raw("order")
RAW_POS = _raw("pos")
RAW_APP = _raw("app")
RAW_LINE = _raw("line")
RAW_PROFILE = _raw("profile")
RAW_TOPICS = (RAW_WEB, RAW_CART, RAW_ORDER, RAW_POS, RAW_APP, RAW_LINE, RAW_PROFILE)

IDENTITY_LINKS = TopicSpec(
    "identity.links", "identifier key", "IdentityLinkRecord", IDENTITY_LINK_ADAPTER
)
CUSTOMER_EVENTS = TopicSpec(
    "customer.events", "customer_id", "CustomerEvent", TypeAdapter(CustomerEvent)
)
IDENTITY_CHANGES = TopicSpec(
    "identity.changes", "customer_id", "IdentityChange", IDENTITY_CHANGE_ADAPTER
)
SEGMENT_CHANGES = TopicSpec(
    "segment.changes", "customer_id", "SegmentChanged", TypeAdapter(SegmentChanged)
)
NOTIFICATIONS_REQUESTED = TopicSpec(
    "notifications.requested", "customer_id", "SendNotification", TypeAdapter(SendNotification)
)
NOTIFICATIONS_OUTCOMES = TopicSpec(
    "notifications.outcomes",
    "customer_id",
    "NotificationOutcome",
    TypeAdapter(NotificationOutcome),
)
JOURNEY_CONVERSIONS = TopicSpec(
    "journey.conversions", "customer_id", "JourneyConverted", TypeAdapter(JourneyConverted)
)
DEADLETTER = TopicSpec(
    "deadletter",
    "source topic",
    "DeadLetter",
    TypeAdapter(DeadLetter),
    partitions=1,
    retention_ms=4 * WEEK_MS,
)

CATALOGUE: tuple[TopicSpec, ...] = (
    *RAW_TOPICS,
    IDENTITY_LINKS,
    CUSTOMER_EVENTS,
    IDENTITY_CHANGES,
    SEGMENT_CHANGES,
    NOTIFICATIONS_REQUESTED,
    NOTIFICATIONS_OUTCOMES,
    JOURNEY_CONVERSIONS,
    DEADLETTER,
)

_RAW_AREA_BY_TYPE: dict[str, TopicSpec] = {
    **dict.fromkeys(("page_viewed", "product_viewed", "custom_tracked"), RAW_WEB),
    **dict.fromkeys(
        ("product_added", "product_removed", "cart_viewed", "checkout_started"), RAW_CART
    ),
    **dict.fromkeys(("order_completed", "order_cancelled", "order_refunded"), RAW_ORDER),
    "pos_purchased": RAW_POS,
    **dict.fromkeys(("app_opened", "location_reported"), RAW_APP),
    **dict.fromkeys(("line_followed", "line_unfollowed", "line_account_linked"), RAW_LINE),
    **dict.fromkeys(
        ("identified", "consent_granted", "consent_revoked", "profile_updated"), RAW_PROFILE
    ),
}


def raw_topic_for(event_type: str) -> TopicSpec:
    """The raw topic an event of this ``type`` is produced to."""
    try:
        return _RAW_AREA_BY_TYPE[event_type]
    except KeyError:
        raise ValueError(f"no raw topic for event type {event_type!r}") from None
