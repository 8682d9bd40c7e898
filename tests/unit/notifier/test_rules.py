"""Consent, reachability, channel choice, retry policy and unsubscribe tokens: pure rules."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from schemas.channels import Channel, Purpose
from schemas.customer import CustomerEvent
from schemas.events import CustomTracked, Source
from schemas.identifiers import Identifiers
from schemas.notifications import SendNotification
from schemas.payloads import CustomTrackedPayload
from services.notifier.domain.ledger import Register, consent_field, line_user_id, sort_key
from services.notifier.domain.reach import MarketingCap, Profile, consent_block, plan
from services.notifier.domain.receipts import receipt_of
from services.notifier.domain.retry import RetryPolicy, Step, Verdict, next_step
from services.notifier.domain.tokens import sign, verify

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ALL = frozenset({Channel.EMAIL, Channel.LINE, Channel.PUSH})


def profile(**values: str) -> Profile:
    key = sort_key(T0, "e")
    return Profile.parse(
        {k.replace("__", ":"): Register(k, key, v).encoded() for k, v in values.items()}
    )


def request(
    purpose: Purpose = Purpose.MARKETING, *channels: Channel, fallback: bool = True
) -> SendNotification:
    return SendNotification(
        notification_id="n",
        customer_id="c",
        purpose=purpose,
        channels=channels or (Channel.EMAIL,),
        allow_fallback=fallback,
        template="t",
        requested_at=T0,
    )


@pytest.mark.parametrize(
    ("state", "purpose", "blocked"),
    [
        (None, Purpose.MARKETING, "no_consent"),
        ("granted", Purpose.MARKETING, None),
        ("revoked", Purpose.MARKETING, "opted_out"),
        (None, Purpose.TRANSACTIONAL, None),
        ("revoked", Purpose.TRANSACTIONAL, "opted_out"),
    ],
)
def test_when_consent_is_in_a_state_then_the_purpose_decides(
    state: str | None, purpose: Purpose, blocked: str | None
) -> None:
    values = {consent_field(Channel.EMAIL, purpose).replace(":", "__"): state} if state else {}
    assert consent_block(profile(**values), Channel.EMAIL, purpose) == blocked


def test_when_marketing_opted_out_then_transactional_still_goes() -> None:
    p = profile(consent__email__marketing="revoked", email="a@example.jp\tok")
    assert plan(request(Purpose.TRANSACTIONAL), p, ALL).targets[0].address == "a@example.jp"


def test_when_the_first_channel_is_unreachable_then_the_next_usable_one_is_planned() -> None:
    p = profile(
        consent__line__marketing="granted",
        line_id="Uabc",
        line_follow="0",
        consent__push__marketing="granted",
        **{"push__tok-1": "on"},
    )
    route = plan(request(Purpose.MARKETING, Channel.LINE, Channel.PUSH), p, ALL)
    assert [(t.channel, t.address) for t in route.targets] == [(Channel.PUSH, "tok-1")]


def test_when_fallback_is_not_allowed_then_only_the_first_channel_counts() -> None:
    p = profile(consent__push__marketing="granted", **{"push__tok-1": "on"})
    route = plan(request(Purpose.MARKETING, Channel.LINE, Channel.PUSH, fallback=False), p, ALL)
    assert (route.targets, route.suppressed) == ((), "no_consent")


def test_when_a_customer_had_the_days_marketing_then_more_is_capped_but_not_receipts() -> None:
    now = T0.timestamp()
    sent = ",".join(str(now - h * 3600) for h in (1, 5, 30))  # two in the last 24 h
    p = profile(consent__email__marketing="granted", email="a@example.jp\tok", mk_sent=sent)
    cap = MarketingCap(sends=2)

    assert plan(request(), p, ALL, cap=cap, now=now).suppressed == "capped"
    assert plan(request(Purpose.TRANSACTIONAL), p, ALL, cap=cap, now=now).targets
    assert plan(request(), p, ALL, cap=cap, now=now + 20 * 3600).targets  # one has aged out
    assert plan(request(), p, ALL, cap=MarketingCap(sends=3), now=now).targets
    no_consent = profile(email="a@example.jp\tok", mk_sent=sent)
    assert plan(request(), no_consent, ALL, cap=cap, now=now).suppressed == "no_consent"


def test_when_the_email_bounced_then_it_is_unreachable() -> None:
    p = profile(consent__email__marketing="granted", email="a@example.jp\tbounced")
    assert plan(request(), p, ALL).suppressed == "unreachable"


def test_when_several_push_tokens_are_live_then_the_newest_is_used() -> None:
    old, new = sort_key(T0, "a"), sort_key(T0 + timedelta(days=1), "b")
    p = Profile.parse(
        {"push:old": f"{old}\ton", "push:new": f"{new}\ton", "push:dead": f"{new}\tdead"}
    )
    assert p.push_token() == "new"


def test_when_sort_keys_compare_then_string_order_is_time_order() -> None:
    assert sort_key(T0, "z") < sort_key(T0 + timedelta(microseconds=1), "a")
    assert sort_key(T0, "a") < sort_key(T0, "b")


def test_when_a_line_id_is_namespaced_then_the_bare_user_id_is_kept() -> None:
    uid = "U4af4980629a0c3c5d3c2ea8d5f1a6b7c"
    assert line_user_id(f"shop:{uid}") == uid
    assert line_user_id("shop:not-a-line-id") is None


@pytest.mark.parametrize(
    ("verdict", "attempt", "has_next", "step"),
    [
        (Verdict.ACCEPTED, 1, False, Step.SENT),
        (Verdict.DUPLICATE, 2, False, Step.SENT),
        (Verdict.RETRYABLE, 1, True, Step.RETRY),
        (Verdict.RETRYABLE, 3, True, Step.FAIL),
        (Verdict.PERMANENT, 1, True, Step.NEXT_CHANNEL),
        (Verdict.GONE, 1, False, Step.FAIL),
    ],
)
def test_when_a_provider_answers_then_the_next_step_follows(
    verdict: Verdict, attempt: int, has_next: bool, step: Step
) -> None:
    assert next_step(verdict, attempt, RetryPolicy(max_attempts=3), has_next) is step


def test_when_backing_off_then_delays_grow_are_jittered_capped_and_honour_retry_after() -> None:
    policy, rng = RetryPolicy(base_s=2, cap_s=60), random.Random(1)
    delays = [policy.delay(n, None, rng) for n in range(1, 10)]
    assert 1 <= delays[0] <= 2
    assert 4 <= delays[2] <= 8
    assert max(delays) <= 60
    assert policy.delay(1, 120, rng) == 120


def test_when_a_token_is_signed_then_it_verifies_and_a_tampered_one_does_not() -> None:
    token = sign(b"secret", "c-42", Channel.EMAIL)
    assert verify(b"secret", token) == ("c-42", Channel.EMAIL)
    assert verify(b"other", token) is None
    assert verify(b"secret", token[:-2] + "AA") is None
    assert verify(b"secret", "garbage") is None


@pytest.mark.parametrize(
    ("name", "properties", "expected"),
    [
        ("Push Notification Received", {"notification_id": "n-1"}, "n-1"),
        ("Push Notification Tapped", {"notification_id": "n-1"}, "n-1"),
        ("Push Notification Received", {}, None),
        ("Push Notification Received", {"notification_id": 7}, None),
        ("Push Notification Received", {"notification_id": "x" * 300}, None),
        ("Product Shared", {"notification_id": "n-1"}, None),
    ],
)
def test_when_the_app_reports_a_push_event_then_only_a_well_formed_one_is_a_receipt(
    name: str, properties: dict[str, object], expected: str | None
) -> None:
    event = CustomTracked(
        event_id="e-1",
        occurred_at=T0,
        received_at=T0,
        source=Source.APP,
        identifiers=Identifiers(device_id="d-1"),
        payload=CustomTrackedPayload(name=name, properties=properties),
    )
    item = CustomerEvent(customer_id="c-1", identity_version=1, resolved_at=T0, event=event)

    found = receipt_of(item)

    assert (found.notification_id if found else None) == expected
    if found:
        assert (found.customer_id, found.at, found.via) == ("c-1", T0, name)
