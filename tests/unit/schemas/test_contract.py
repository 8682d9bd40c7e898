"""The rest of the contract: internal messages, the topic catalogue, exported schemas."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import orjson
import pytest
from pydantic import BaseModel

from schemas.codec import decode, encode
from schemas.customer import CustomerEvent
from schemas.deadletter import DeadLetter
from schemas.events import RAW_EVENT_TYPES, event_type_name
from schemas.examples import EXAMPLES, example
from schemas.export import OUT_DIR, generated, stale
from schemas.identifiers import IdentifierKind
from schemas.identity import (
    CustomersMerged,
    CustomerSplit,
    IdentifierAdded,
    IdentifierRef,
    IdentityConflictRecorded,
    IdentityLinked,
    IdentityLinkRevoked,
)
from schemas.notifications import NotificationOutcome, SendNotification
from schemas.segments import RfmScores, SegmentChanged
from schemas.topics import (
    CATALOGUE,
    CUSTOMER_EVENTS,
    DEADLETTER,
    IDENTITY_CHANGES,
    IDENTITY_LINKS,
    NOTIFICATIONS_OUTCOMES,
    NOTIFICATIONS_REQUESTED,
    RAW_TOPICS,
    SEGMENT_CHANGES,
    raw_topic_for,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
EMAIL = IdentifierRef(kind=IdentifierKind.EMAIL, value="hanako@example.jp")

INTERNAL: list[BaseModel] = [
    CustomerEvent(
        customer_id="c-1", identity_version=3, resolved_at=NOW, event=example("order_completed")
    ),
    IdentityLinked(
        link_id="l-1",
        identifier=EMAIL,
        linked_to=IdentifierRef(kind=IdentifierKind.MEMBER_ID, value="M1"),
        event_id="e-1",
        source="web",
        occurred_at=NOW,
    ),
    IdentityLinkRevoked(
        link_id="l-1", operator="ops@shop", reason="shared family email", occurred_at=NOW
    ),
    CustomersMerged(
        customer_id="c-1", version=2, occurred_at=NOW, absorbed=("c-2",), cause_event_id="e-1"
    ),
    IdentifierAdded(
        customer_id="c-1", version=1, occurred_at=NOW, identifier=EMAIL, cause_event_id="e-1"
    ),
    IdentityConflictRecorded(
        customer_id="c-1",
        version=1,
        occurred_at=NOW,
        other_customer_id="c-3",
        identifier=EMAIL,
        reason="different member_id",
        cause_event_id="e-2",
    ),
    CustomerSplit(
        customer_id="c-1", version=4, occurred_at=NOW, into=("c-1", "c-9"), revoked_link_id="l-1"
    ),
    SegmentChanged(
        customer_id="c-1",
        dimension="rfm",
        from_segment=None,
        to_segment="New Customers",
        reason="event",
        version=1,
        thresholds_version=1,
        as_of=NOW,
        scores=RfmScores(recency=5, frequency=1, monetary=2),
    ),
    SendNotification(
        notification_id="n-1",
        customer_id="c-1",
        journey_id="cart",
        instance_id="i-1",
        step_id="s1",
        purpose="marketing",
        channels=("line", "email"),
        template="cart_1",
        data={"items": [{"name": "煎茶", "price": 1080}]},
        requested_at=NOW,
    ),
    NotificationOutcome(
        notification_id="n-1",
        customer_id="c-1",
        channel="line",
        status="sent",
        attempts=1,
        occurred_at=NOW,
    ),
    DeadLetter.of(
        b"\xff",
        reason="undecodable",
        error="bad",
        service="identity",
        occurred_at=NOW,
        key=b"k",
        source_topic="kizuna.raw.web",
        source_partition=0,
        source_offset=7,
    ),
]


TOPIC_OF = {
    CustomerEvent: CUSTOMER_EVENTS,
    IdentityLinked: IDENTITY_LINKS,
    IdentityLinkRevoked: IDENTITY_LINKS,
    CustomersMerged: IDENTITY_CHANGES,
    IdentifierAdded: IDENTITY_CHANGES,
    IdentityConflictRecorded: IDENTITY_CHANGES,
    CustomerSplit: IDENTITY_CHANGES,
    SegmentChanged: SEGMENT_CHANGES,
    SendNotification: NOTIFICATIONS_REQUESTED,
    NotificationOutcome: NOTIFICATIONS_OUTCOMES,
    DeadLetter: DEADLETTER,
}


@pytest.mark.parametrize("message", INTERNAL, ids=lambda m: type(m).__name__)
def test_when_an_internal_message_round_trips_through_its_topic_type_then_it_is_equal(
    message: BaseModel,
) -> None:
    spec = TOPIC_OF[type(message)]

    assert decode(spec.adapter, encode(message)) == message


def test_when_a_dead_letter_is_made_then_the_original_bytes_survive() -> None:
    letter = DeadLetter.of(
        b"\x00\xffraw", reason="invalid", error="x", service="s", occurred_at=NOW
    )

    assert decode(DEADLETTER.adapter, encode(letter)).original == b"\x00\xffraw"


def test_when_any_event_type_is_routed_then_it_has_exactly_one_raw_topic() -> None:
    names = [event_type_name(cls) for cls in RAW_EVENT_TYPES]

    assert {raw_topic_for(name) for name in names} == set(RAW_TOPICS)
    with pytest.raises(ValueError, match="no raw topic"):
        raw_topic_for("fax_sent")


def test_when_the_catalogue_is_read_then_names_are_unique_and_settings_valid() -> None:
    names = [spec.name() for spec in CATALOGUE]

    assert len(names) == len(set(names))
    assert all(name.startswith("kizuna.") for name in names)
    assert all(spec.partitions >= 1 and spec.cleanup in {"delete", "compact"} for spec in CATALOGUE)


def test_when_the_exported_json_schemas_are_compared_then_they_are_up_to_date() -> None:
    assert stale() == [], "run `make schemas` and commit schemas/json/"


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_when_an_upstream_producer_validates_with_the_json_schema_then_examples_pass(
    kind: str,
) -> None:
    schema = orjson.loads(generated()["RawEvent.schema.json"])

    jsonschema.validate(orjson.loads(encode(example(kind))), schema)


def test_when_the_exported_schema_is_applied_to_a_bad_event_then_it_rejects_it() -> None:
    schema = orjson.loads((OUT_DIR / "RawEvent.schema.json").read_bytes())
    document = orjson.loads(encode(example("order_completed")))
    del document["payload"]["order_id"]

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)
