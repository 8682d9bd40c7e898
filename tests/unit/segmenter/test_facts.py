"""Given orders, receipts, cancels and refunds in any order and any number of times,
when they are applied, then each order counts once with its net amount."""

from __future__ import annotations

from datetime import date
from functools import reduce

from schemas.events import RawEvent
from services.segmenter.domain.facts import EMPTY, Facts, apply_event
from services.segmenter.domain.figures import purchases
from tests.unit.segmenter.builders import cancel, on_day, order, page, profile, receipt, refund, ts


def history(*events: RawEvent) -> Facts:
    return reduce(apply_event, events, EMPTY)


def test_when_an_order_is_partly_refunded_then_its_net_amount_drops_but_never_below_zero() -> None:
    facts = history(
        order("o1", 10_000, on_day(0)),
        refund("o1", 3_000, on_day(1)),
        refund("o1", 9_000, on_day(2)),
    )

    assert facts.orders["o1"].net == 0
    assert (
        history(order("o1", 10_000, on_day(0)), refund("o1", 3_000, on_day(1))).orders["o1"].net
        == 7_000
    )


def test_when_a_refund_arrives_before_its_order_then_it_applies_once_the_order_arrives() -> None:
    early = refund("o1", 2_000, on_day(1), event_id="r1")
    placed = order("o1", 10_000, on_day(0))

    before = history(early)
    after = history(early, placed)

    assert purchases(before) == []
    assert after == history(placed, early)
    assert after.orders["o1"].net == 8_000


def test_when_events_are_replayed_then_nothing_is_counted_twice() -> None:
    placed, back = order("o1", 10_000, on_day(0)), refund("o1", 1_000, on_day(1))

    once = history(placed, back)
    twice = history(placed, back, placed, back)

    assert twice == once
    assert apply_event(once, back) is once


def test_when_an_order_is_cancelled_then_it_no_longer_counts_for_frequency() -> None:
    facts = history(
        order("o1", 5_000, on_day(0)), order("o2", 8_000, on_day(3)), cancel("o1", on_day(4))
    )

    bought = purchases(facts)

    assert [(p.net, p.channel) for p in bought] == [(8_000, "online")]


def test_when_a_store_receipt_and_a_mall_order_arrive_then_store_and_online_are_told_apart() -> (
    None
):
    facts = history(
        receipt("shibuya", "R-1", 3_300, on_day(0)),
        order("rk-9", 4_000, on_day(1), mall="rakuten"),
        receipt("shibuya", "R-1", 3_300, on_day(0)),
    )

    assert sorted(facts.orders) == ["pos:shibuya:R-1", "rk-9"]
    assert [p.channel for p in purchases(facts)] == ["store", "online"]


def test_when_profile_updates_arrive_out_of_order_then_the_latest_one_wins() -> None:
    newer = profile(on_day(5), birthday=date(1990, 4, 1), channel="line")
    older = profile(on_day(2), birthday=date(1985, 1, 1), channel="email")

    facts = history(newer, older, page(on_day(9)))

    assert facts.birthday is not None
    assert facts.birthday.value == "1990-04-01"
    assert facts.preferred_channel is not None
    assert facts.preferred_channel.value == "line"
    assert facts.last_seen == ts(on_day(9))
