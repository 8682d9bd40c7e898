"""Delivery receipts: the app says a push arrived, the one channel that can tell us.

The push carries its ``notification_id`` in the message data (``adapters/fcm.py``). The
app reports Segment's mobile push events through the gateway with that id as a
property; kizuna keeps them as ``custom_tracked`` and they reach the notifier on
``customer.events``, like every other fact. A receipt turns the notification's ``sent``
into ``delivered`` (once). LINE push and SMTP give no per-message receipt: their
outcomes stay ``sent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.customer import CustomerEvent
from schemas.events import CustomTracked

# Segment's mobile spec names; a tap implies the push arrived.
RECEIPT_EVENTS = frozenset({"Push Notification Received", "Push Notification Tapped"})
MAX_ID = 256


@dataclass(frozen=True)
class Receipt:
    notification_id: str
    customer_id: str
    at: datetime
    via: str  # the event name that said so


def receipt_of(item: CustomerEvent) -> Receipt | None:
    event = item.event
    if not isinstance(event, CustomTracked) or event.payload.name not in RECEIPT_EVENTS:
        return None
    notification_id = event.payload.properties.get("notification_id")
    if not isinstance(notification_id, str) or not 0 < len(notification_id) <= MAX_ID:
        return None
    return Receipt(notification_id, item.customer_id, event.occurred_at, event.payload.name)
