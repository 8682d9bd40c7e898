"""The consent ledger and contact points, as last-writer-wins registers by event time.

A customer's view is a set of registers (``consent:email:marketing``, ``email``,
``line_id``, ``line_follow``, ``push:<token>``). Each write carries a sort key made of
the event time and event id, and the store keeps the write with the greatest key, so a
late-arriving older event never overrides a newer one and a replay changes nothing.
Consent events are also kept in full (what the person was shown, how, when) as the
特定電子メール法 record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.base import Frozen, Id, Timestamp
from schemas.channels import Channel, Purpose
from schemas.customer import CustomerEvent
from schemas.events import AppOpened, ConsentGranted, ConsentRevoked, LineFollowed, LineUnfollowed
from schemas.identifiers import IdentifierKind, InvalidIdentifierError, normalise

GRANTED = "granted"
REVOKED = "revoked"
PUSH_ON, PUSH_OFF, PUSH_DEAD = "on", "off", "dead"
EMAIL_OK, EMAIL_BOUNCED = "ok", "bounced"


def sort_key(at: datetime, event_id: str) -> str:
    """Fixed-width so that string order is time order (ties broken by event id)."""
    micros = int(at.timestamp() * 1_000_000)
    return f"{micros:020d}|{event_id}"


@dataclass(frozen=True)
class Register:
    """One last-writer-wins write: ``field`` takes ``value`` if ``key`` is the newest."""

    field: str
    key: str
    value: str

    def encoded(self) -> str:
        return f"{self.key}\t{self.value}"


class ConsentRecord(Frozen):
    """One consent change as the law wants it kept: when, how, what was shown."""

    event_id: Id
    customer_id: Id
    state: str
    channel: Channel
    purpose: Purpose
    method: str
    shown_text: str | None = None
    wording_version: str | None = None
    source: str
    occurred_at: Timestamp


def consent_field(channel: Channel, purpose: Purpose) -> str:
    return f"consent:{channel.value}:{purpose.value}"


def push_field(token: str) -> str:
    return f"push:{token}"


def line_user_id(raw: str) -> str | None:
    """The bare LINE user id (``U`` + 32 hex) that the push API wants, or None."""
    try:
        return normalise(IdentifierKind.LINE_USER_ID, raw, line_provider="line").split(":", 1)[1]
    except InvalidIdentifierError:
        return None


def ledger_updates(item: CustomerEvent) -> tuple[list[Register], ConsentRecord | None]:
    """The register writes (and the consent record, if any) one customer event implies."""
    event = item.event
    key = sort_key(event.occurred_at, event.event_id)
    writes = _contact_writes(item, key)
    record = None
    if isinstance(event, ConsentGranted | ConsentRevoked):
        state = GRANTED if isinstance(event, ConsentGranted) else REVOKED
        p = event.payload
        writes.append(Register(consent_field(p.channel, p.purpose), key, state))
        record = ConsentRecord(
            event_id=event.event_id,
            customer_id=item.customer_id,
            state=state,
            channel=p.channel,
            purpose=p.purpose,
            method=p.method,
            shown_text=p.shown_text,
            wording_version=p.wording_version,
            source=event.source.value,
            occurred_at=event.occurred_at,
        )
    return writes, record


def _contact_writes(item: CustomerEvent, key: str) -> list[Register]:
    event = item.event
    writes: list[Register] = []
    if event.identifiers.email:
        try:
            email = normalise(IdentifierKind.EMAIL, event.identifiers.email)
            writes.append(Register("email", key, f"{email}\t{EMAIL_OK}"))
        except InvalidIdentifierError:
            pass
    if event.identifiers.line_user_id and (uid := line_user_id(event.identifiers.line_user_id)):
        writes.append(Register("line_id", key, uid))
    if isinstance(event, LineFollowed | LineUnfollowed):
        writes.append(Register("line_follow", key, "1" if isinstance(event, LineFollowed) else "0"))
    if isinstance(event, AppOpened) and event.payload.push_token:
        state = PUSH_ON if event.payload.push_enabled is not False else PUSH_OFF
        writes.append(Register(push_field(event.payload.push_token), key, state))
    return writes


def revocation(
    customer_id: str, channel: Channel, purpose: Purpose, event_id: str, at: datetime, method: str
) -> tuple[Register, ConsentRecord]:
    """An opt-out recorded by the notifier itself (one-click unsubscribe)."""
    record = ConsentRecord(
        event_id=event_id,
        customer_id=customer_id,
        state=REVOKED,
        channel=channel,
        purpose=purpose,
        method=method,
        shown_text=None,
        wording_version=None,
        source="crm",
        occurred_at=at,
    )
    return Register(consent_field(channel, purpose), sort_key(at, event_id), REVOKED), record


def dead_address(channel: Channel, address: str, at: datetime, reason: str) -> Register | None:
    """A provider said this address is gone for good: remember it (by time, like the rest)."""
    key = sort_key(at, f"provider:{reason}")
    if channel is Channel.PUSH:
        return Register(push_field(address), key, PUSH_DEAD)
    if channel is Channel.EMAIL:
        return Register("email", key, f"{address}\t{EMAIL_BOUNCED}")
    if channel is Channel.LINE:
        return Register("line_follow", key, "0")
    return None
