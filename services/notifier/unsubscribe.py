"""RFC 8058 one-click unsubscribe: verify the signed token, stop marketing at once, and
publish the opt-out as a ``consent_revoked`` raw event (the durable record)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from schemas.channels import Channel, Purpose
from schemas.codec import encode
from schemas.events import ConsentRevoked, Source
from schemas.identifiers import Identifiers
from schemas.payloads import ConsentPayload
from services.notifier.adapters.ledger import LedgerStore
from services.notifier.domain.ledger import revocation
from services.notifier.domain.tokens import sign, verify
from services.notifier.metrics import CONSENT_CHANGES, UNSUBSCRIBES

log = logging.getLogger(__name__)

Publish = Callable[[bytes, bytes], Awaitable[None]]


class Unsubscriber:
    def __init__(self, ledger: LedgerStore, secret: bytes, base_url: str, publish: Publish) -> None:
        self._ledger = ledger
        self._secret = secret
        self._base = base_url.rstrip("/")
        self._publish = publish

    def url(self, customer_id: str, channel: Channel) -> str:
        return f"{self._base}/{sign(self._secret, customer_id, channel)}"

    async def unsubscribe(self, token: str) -> bool:
        """Record the opt-out (marketing stops now), then publish it; False if forged."""
        parsed = verify(self._secret, token)
        if parsed is None:
            UNSUBSCRIBES.labels("bad_token").inc()
            return False
        customer_id, channel = parsed
        now = datetime.now(UTC)
        event_id = f"unsub-{uuid.uuid4().hex}"
        register, record = revocation(
            customer_id, channel, Purpose.MARKETING, event_id, now, "one_click"
        )
        await self._ledger.apply(customer_id, [register], record)
        CONSENT_CHANGES.labels(channel.value, "marketing", "revoked", "one_click").inc()
        email = (await self._ledger.profile(customer_id)).any_email()
        if email is None:
            # No identifier to put on a raw event; the ledger entry is the only record.
            log.warning("opt-out without a known email", extra={"customer_id": customer_id})
            UNSUBSCRIBES.labels("recorded_only").inc()
            return True
        event = ConsentRevoked(
            event_id=event_id,
            occurred_at=now,
            received_at=now,
            source=Source.CRM,
            identifiers=Identifiers(email=email),
            payload=ConsentPayload(channel=channel, purpose=Purpose.MARKETING, method="one_click"),
        )
        await self._publish(event.identifiers.routing_key().encode(), encode(event))
        UNSUBSCRIBES.labels("ok").inc()
        return True
