"""POS receipt export (CSV, one row per receipt line) -> ``pos_purchased`` events.

Columns (header row required; extra columns are ignored; * = required):

    store_id*     store code                        e.g. S012
    receipt_id*   receipt number, unique per store  e.g. 20261120-0042
    purchased_at* ISO 8601, or 'YYYY/MM/DD HH:MM[:SS]' (no zone: business time, JST)
    member_card   point/member card number (the customer; blank: anonymous receipt)
    register_id   till number
    product_id*   product code (JAN etc.)
    sku           SKU
    name          product name
    quantity*     integer ≥ 1
    unit_price*   integer yen, tax included ('1,980', '¥1,980' and full-width digits accepted)
    amount        line amount after line discounts (default quantity × unit_price)
    receipt_total what the customer paid (default: sum of amounts − discount)
    discount      receipt-level discount in yen (default 0)

A receipt's lines must be consecutive rows and agree on purchased_at, member_card,
register_id, receipt_total and discount. A receipt with any bad line is rejected whole,
each problem reported as 'line N: field: problem'. The event_id is
``pos:<store_id>:<receipt_id>``, so importing a file twice yields the same events.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from pydantic import ValidationError

from schemas.codec import describe
from schemas.events import PosPurchased, Source

REQUIRED = ("store_id", "receipt_id", "purchased_at", "product_id", "quantity", "unit_price")
OPTIONAL = ("member_card", "register_id", "sku", "name", "amount", "receipt_total", "discount")
_RECEIPT_FIELDS = ("purchased_at", "member_card", "register_id", "receipt_total", "discount")
_ID = re.compile(r"^[^\s\x00-\x1f]{1,60}$")
_MONEY_NOISE = re.compile(r"[,¥￥円\s]")
_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.problem}"


@dataclass(slots=True)
class Receipt:
    """The consecutive rows of one (store_id, receipt_id), as read."""

    store_id: str
    receipt_id: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def event_id(self) -> str:
        return f"pos:{self.store_id}:{self.receipt_id}"

    @property
    def first_line(self) -> int:
        return self.rows[0][0] if self.rows else 0


def missing_columns(header: Iterable[str]) -> list[str]:
    present = {clean(name) for name in header}
    return [name for name in REQUIRED if name not in present]


def clean(value: str | None) -> str:
    """Full-width digits and letters (０-９, Ａ) are common in POS exports."""
    return unicodedata.normalize("NFKC", value or "").strip()


def receipts(rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[Receipt]:
    """Group consecutive rows by (store_id, receipt_id); a receipt seen again is a problem."""
    current: Receipt | None = None
    ended: dict[tuple[str, str], int] = {}
    for line, raw in rows:
        row = {clean(k): clean(v) for k, v in raw.items() if k is not None}
        key = (row.get("store_id", ""), row.get("receipt_id", ""))
        if current is not None and key == (current.store_id, current.receipt_id):
            current.rows.append((line, row))
            continue
        if current is not None:
            ended[(current.store_id, current.receipt_id)] = current.first_line
            yield current
        current = Receipt(*key, rows=[(line, row)])
        _check_key(current, line, ended)
    if current is not None:
        yield current


def _check_key(receipt: Receipt, line: int, ended: dict[tuple[str, str], int]) -> None:
    for name, value in (("store_id", receipt.store_id), ("receipt_id", receipt.receipt_id)):
        if not _ID.match(value):
            receipt.problems.append(Problem(line, name, "required, 1-60 characters, no spaces"))
    earlier = ended.get((receipt.store_id, receipt.receipt_id))
    if earlier is not None:
        receipt.problems.append(
            Problem(
                line,
                "receipt_id",
                f"receipt started at line {earlier} already ended; "
                "a receipt's lines must be consecutive",
            )
        )


def to_event(receipt: Receipt, tz: tzinfo, received_at: datetime) -> PosPurchased | None:
    """The receipt as an event; None for an anonymous receipt (no member card).

    Problems are appended to ``receipt.problems``; the caller rejects the receipt if any.
    """
    items = [_item(line, row, receipt.problems) for line, row in receipt.rows]
    shared = _shared(receipt)
    occurred_at = _timestamp(receipt.first_line, shared.get("purchased_at", ""), tz, receipt)
    money = _money(receipt, items, shared)
    if receipt.problems or occurred_at is None or money is None:
        return None
    if not shared.get("member_card"):
        return None
    payload = {
        "store_id": receipt.store_id,
        "receipt_id": receipt.receipt_id,
        "register_id": shared.get("register_id") or None,
        "member_card": shared["member_card"],
        "items": items,
        "money": money,
    }
    envelope = {
        "event_id": receipt.event_id,
        "occurred_at": occurred_at,
        "received_at": received_at,
        "source": Source.POS,
        "identifiers": {"pos_card": shared["member_card"]},
        "context": {"store_id": receipt.store_id},
        "payload": payload,
    }
    try:
        return PosPurchased.model_validate(envelope)
    except ValidationError as err:
        problem = describe(err.errors(include_url=False)).replace("\n", "; ")
        receipt.problems.append(Problem(receipt.first_line, "receipt", problem))
        return None


def is_anonymous(receipt: Receipt) -> bool:
    return not receipt.rows[0][1].get("member_card")


def _shared(receipt: Receipt) -> dict[str, str]:
    """Receipt-level columns: every line must agree (blank lines take the receipt's value)."""
    shared: dict[str, str] = {}
    for line, row in receipt.rows:
        for name in _RECEIPT_FIELDS:
            value = row.get(name, "")
            if not value:
                continue
            if name in shared and shared[name] != value:
                receipt.problems.append(
                    Problem(line, name, f"{value!r} differs from {shared[name]!r} on this receipt")
                )
            shared.setdefault(name, value)
    return shared


def _item(line: int, row: dict[str, str], problems: list[Problem]) -> dict[str, Any]:
    product: dict[str, Any] = {"product_id": row.get("product_id", "")}
    if not _ID.match(product["product_id"]):
        problems.append(Problem(line, "product_id", "required, 1-60 characters, no spaces"))
    for name in ("sku", "name"):
        if row.get(name):
            product[name] = row[name]
    quantity = _integer(line, row, "quantity", problems, minimum=1)
    unit_price = _integer(line, row, "unit_price", problems)
    amount = _integer(line, row, "amount", problems) if row.get("amount") else None
    if amount is None:
        amount = quantity * unit_price
    elif amount > quantity * unit_price:
        problems.append(
            Problem(
                line, "amount", f"{amount} exceeds quantity × unit_price ({quantity * unit_price})"
            )
        )
    return {"product": product, "quantity": quantity, "unit_price": unit_price, "amount": amount}


def _integer(
    line: int, row: dict[str, str], name: str, problems: list[Problem], minimum: int = 0
) -> int:
    text = _MONEY_NOISE.sub("", row.get(name, ""))
    if not text:
        problems.append(Problem(line, name, "required"))
        return 0
    try:
        value = int(text)
    except ValueError:
        problems.append(Problem(line, name, f"not a whole number: {row[name]!r}"))
        return 0
    if value < minimum:
        problems.append(Problem(line, name, f"must be at least {minimum} (got {value})"))
    return value


def _timestamp(line: int, text: str, tz: tzinfo, receipt: Receipt) -> datetime | None:
    for parse in (_iso, *(_strptime(f) for f in _FORMATS)):
        try:
            parsed = parse(text)
        except ValueError:
            continue
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
    receipt.problems.append(
        Problem(line, "purchased_at", f"not a date-time (ISO or YYYY/MM/DD HH:MM:SS): {text!r}")
    )
    return None


def _iso(text: str) -> datetime:
    if "T" not in text:
        raise ValueError(text)
    return datetime.fromisoformat(text)


def _strptime(fmt: str) -> Callable[[str], datetime]:
    def parse(text: str) -> datetime:
        return datetime.strptime(text, fmt)  # noqa: DTZ007  (zone added by the caller)

    return parse


def _money(
    receipt: Receipt, items: list[dict[str, Any]], shared: dict[str, str]
) -> dict[str, int] | None:
    line = receipt.first_line
    discount = _integer(line, shared, "discount", receipt.problems) if "discount" in shared else 0
    subtotal = sum(item["amount"] for item in items)
    expected = subtotal - discount
    total = expected
    if "receipt_total" in shared:
        total = _integer(line, shared, "receipt_total", receipt.problems)
        if total != expected:
            receipt.problems.append(
                Problem(
                    line,
                    "receipt_total",
                    f"{total} but lines sum to {subtotal} − discount {discount} = {expected}",
                )
            )
    return {"subtotal": subtotal, "discount": discount, "total": total}
