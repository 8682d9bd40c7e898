"""Raw events through the identity worker: a member who registered a store card in the
app, added to a cart on the web, then paid at a store showing only the card."""

from __future__ import annotations

from confluent_kafka import Producer

from runtime.settings import Settings
from schemas.channels import Channel
from schemas.codec import encode
from schemas.events import EventEnvelope, Identified
from schemas.identifiers import Identifiers
from schemas.topics import raw_topic_for
from services.identity.domain.model import customer_id_for
from services.journey.domain.policy import in_holdout
from services.journey.settings import JourneySettings
from tests.unit.journey.builders import DAY, MINUTE, added, consent, receipt


def _with(event: EventEnvelope, **ids: str) -> EventEnvelope:
    return event.model_copy(update={"identifiers": Identifiers(**ids)})


def send_raw(producer: Producer, settings: Settings, *events: EventEnvelope) -> None:
    for event in events:
        topic = raw_topic_for(event.type).name(settings.namespace)  # type: ignore[attr-defined]
        producer.produce(topic, key=event.identifiers.routing_key(), value=encode(event))
    assert producer.flush(10) == 0


def stitched_member(n: int) -> tuple[str, str, str]:
    """(member id, card, customer id) for a member whose customer is not held out."""
    policy = JourneySettings().policy()
    for attempt in range(n * 1000, n * 1000 + 1000):
        member, card = f"M{attempt}", f"CARD{attempt}"
        customer = min(customer_id_for(f"member_id:{member}"), customer_id_for(f"pos_card:{card}"))
        if not in_holdout(policy, customer, "cart_abandonment", 0.05):
            return member, card, customer
    raise AssertionError("no treated member found")


def cart_then_store_visit(
    producer: Producer, settings: Settings, base: float, n: int, *, buys_in_store: bool
) -> str:
    member, card, customer = stitched_member(n)
    registered = Identified(
        event_id=f"reg-{n}",
        occurred_at=added(base - 2 * DAY).occurred_at.replace(microsecond=0),
        received_at=added(base - 2 * DAY).received_at,
        source="app",
        identifiers=Identifiers(member_id=member, pos_card=card),
    )
    events: list[EventEnvelope] = [
        registered,
        _with(consent(base - DAY, Channel.EMAIL), member_id=member),
        _with(added(base, cart_id=f"cart-{n}"), member_id=member, anonymous_id=f"cookie-{n}"),
    ]
    if buys_in_store:
        events.append(_with(receipt(base + 20 * MINUTE, receipt_id=f"r-{n}"), pos_card=card))
    send_raw(producer, settings, *events)
    return customer
