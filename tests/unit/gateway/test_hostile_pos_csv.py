"""Whatever a POS export holds — negative prices, mojibake, dates in year 9999, numbers
with thousands of digits — every receipt becomes a valid event, is skipped as anonymous,
or is rejected with problems that name a line of that receipt and a column."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import decode, encode
from schemas.events import RAW_EVENT_ADAPTER, PosPurchased
from services.gateway.domain.pos_csv import OPTIONAL, REQUIRED, Receipt, receipts, to_event
from services.gateway.pos_import import detect_encoding
from tests.hostile import MOJIBAKE, SHIFT_JIS_BYTES, TEMPLATE_INJECTIONS, ZERO_AND_FAR_TIMES

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
COLUMNS = REQUIRED + OPTIONAL
HEADER = ",".join(COLUMNS) + "\n"
GOOD = {
    "store_id": "S01",
    "receipt_id": "R1",
    "purchased_at": "2026/11/20 10:15:00",
    "product_id": "tea-001",
    "quantity": "2",
    "unit_price": "1,080",
    "member_card": "PC-0001",
    "register_id": "2",
    "sku": "",
    "name": "煎茶",
    "amount": "",
    "receipt_total": "",
    "discount": "",
}

cell = st.one_of(
    st.sampled_from(
        (
            *("", "-1", "-1980", "0", "1.5", "9" * 5_000, "１,９８０", "¥-300", "二", "1e3"),
            *MOJIBAKE,
            *TEMPLATE_INJECTIONS,
            *ZERO_AND_FAR_TIMES,
            *("2026/02/30 10:00", "9999/12/31 23:59:59", "1970/01/01 00:00"),
        )
    ),
    st.text(max_size=12),
)
row = st.fixed_dictionaries({}, optional={column: cell for column in COLUMNS}).map(
    lambda broken: GOOD | broken
)


def read(rows: list[dict[str, str]]) -> list[Receipt]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    reader = csv.DictReader(io.StringIO(buffer.getvalue(), newline=""))
    return list(receipts((reader.line_num, r) for r in reader))


@settings(max_examples=200, deadline=None)
@given(st.lists(row, min_size=1, max_size=4))
def test_when_an_export_has_hostile_cells_then_each_receipt_is_an_event_skipped_or_explained(
    rows: list[dict[str, str]],
) -> None:
    for receipt in read(rows):
        event = to_event(receipt, JST, NOW)
        lines = {line for line, _ in receipt.rows}
        if receipt.problems:
            assert event is None
            assert all(p.line in lines and p.field for p in receipt.problems)
        elif event is not None:
            assert isinstance(event, PosPurchased)
            assert decode(RAW_EVENT_ADAPTER, encode(event)) == event
            money = event.payload.money
            assert money.total == money.subtotal - money.discount >= 0
        else:
            assert not receipt.rows[0][1].get("member_card")


@pytest.mark.parametrize(
    ("column", "value"),
    [("unit_price", "-1080"), ("quantity", "-2"), ("discount", "-300"), ("amount", "-1")],
)
def test_when_a_cell_is_negative_then_the_receipt_is_rejected_naming_line_and_column(
    column: str, value: str
) -> None:
    [receipt] = read([GOOD | {column: value}])

    assert to_event(receipt, JST, NOW) is None
    assert any(p.line == 2 and p.field == column for p in receipt.problems), receipt.problems


@pytest.mark.parametrize("when", ["9999/12/31 23:59:59", "1970/01/01 00:00", "0001-01-01T00:00Z"])
def test_when_a_receipt_is_dated_at_a_zero_value_or_year_9999_then_it_is_rejected(
    when: str,
) -> None:
    [receipt] = read([GOOD | {"purchased_at": when}])

    assert to_event(receipt, JST, NOW) is None
    assert "occurred_at" in str(receipt.problems[0]) or "purchased_at" in str(receipt.problems[0])


def test_when_a_name_holds_template_syntax_then_the_receipt_keeps_it_literally() -> None:
    [receipt] = read([GOOD | {"name": "{{ 7*7 }}{% raw %}"}])

    event = to_event(receipt, JST, NOW)

    assert isinstance(event, PosPurchased)
    assert event.payload.items[0].product.name == "{{ 7*7 }}{% raw %}"


def test_when_a_utf8_export_has_one_shift_jis_row_then_it_is_read_as_shift_jis(
    tmp_path: Path,
) -> None:
    export = tmp_path / "mixed.csv"
    export.write_bytes(HEADER.encode() + b"S01,R1,2026/11/20 10:15," + SHIFT_JIS_BYTES + b"\n")

    assert detect_encoding(export) == "cp932"
