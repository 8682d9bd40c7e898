"""POS exports: each receipt becomes one event; a bad line rejects its receipt with the
line number and the field, and the other receipts go on."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from schemas.events import PosPurchased
from services.gateway.domain.pos_csv import Receipt, missing_columns, receipts, to_event

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
HEADER = (
    "store_id,receipt_id,purchased_at,member_card,register_id,"
    "product_id,name,quantity,unit_price,amount,receipt_total,discount\n"
)


def read(text: str) -> list[Receipt]:
    reader = csv.DictReader(io.StringIO(HEADER + text))
    return list(receipts((reader.line_num, row) for row in reader))


def test_when_a_receipt_has_two_lines_then_one_event_carries_both_in_jst() -> None:
    [receipt] = read(
        'S01,R1,2026/11/20 10:15:00,ＰＣ-０００１,2,tea-001,煎茶,2,"1,080",,4860,300\n'
        "S01,R1,2026/11/20 10:15:00,ＰＣ-０００１,2,cup-203,湯呑み,1,3300,3000,,\n"
    )

    event = to_event(receipt, JST, NOW)

    assert isinstance(event, PosPurchased)
    assert receipt.problems == []
    assert event.event_id == "pos:S01:R1"
    assert event.identifiers.pos_card == "PC-0001"
    assert event.occurred_at == datetime(2026, 11, 20, 1, 15, tzinfo=UTC)
    assert [item.amount for item in event.payload.items] == [2160, 3000]
    assert event.payload.money.subtotal == 5160
    assert event.payload.money.total == 4860


def test_when_a_line_is_bad_then_the_receipt_is_rejected_naming_line_and_field() -> None:
    first, second = read(
        "S01,R1,2026/11/20 10:15:00,PC1,,tea-001,,two,1080,,,\n"
        "S01,R2,2026-11-20T10:20:00+09:00,PC1,,tea-001,,1,1080,,,\n"
    )

    assert to_event(first, JST, NOW) is None
    assert [str(p) for p in first.problems] == ["line 2: quantity: not a whole number: 'two'"]
    assert isinstance(to_event(second, JST, NOW), PosPurchased)


def test_when_the_total_disagrees_with_the_lines_then_the_receipt_is_rejected() -> None:
    [receipt] = read("S01,R1,2026/11/20 10:15,PC1,,tea-001,,1,1080,,999,\n")

    assert to_event(receipt, JST, NOW) is None
    assert "receipt_total: 999 but lines sum to 1080" in str(receipt.problems[0])


def test_when_a_receipt_comes_back_later_in_the_file_then_the_late_lines_are_rejected() -> None:
    receipts_read = read(
        "S01,R1,2026/11/20 10:15,PC1,,a,,1,100,,,\n"
        "S01,R2,2026/11/20 10:16,PC1,,a,,1,100,,,\n"
        "S01,R1,2026/11/20 10:15,PC1,,b,,1,100,,,\n"
    )

    assert [str(p) for p in receipts_read[2].problems] == [
        "line 4: receipt_id: receipt started at line 2 already ended; "
        "a receipt's lines must be consecutive"
    ]


def test_when_a_receipt_has_no_member_card_then_it_makes_no_event_and_no_problem() -> None:
    [receipt] = read("S01,R1,2026/11/20 10:15,,,a,,1,100,,,\n")

    assert to_event(receipt, JST, NOW) is None
    assert receipt.problems == []


def test_when_required_columns_are_missing_then_they_are_named() -> None:
    assert missing_columns(["store_id", "receipt_id", "product_id"]) == [
        "purchased_at",
        "quantity",
        "unit_price",
    ]
