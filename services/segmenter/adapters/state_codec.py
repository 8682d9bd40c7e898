"""Customer state <-> compact orjson bytes (the table value and the hand-off payload).

The table value also records the partition the row was written from, so the time index
can be rebuilt per partition after recovery without knowing the producer's partitioner.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from schemas.base import new_tuple
from services.segmenter.domain.facts import Facts, Order, Trait
from services.segmenter.domain.figures import Purchase, purchases_of
from services.segmenter.domain.scoring import Scores
from services.segmenter.domain.standing import CustomerState, Standing


def facts_to_json(facts: Facts) -> dict[str, Any]:
    # an Order's fields in order: placed_at, total, channel, event_id, cancelled, refunds
    return _facts_out(facts, {key: list(order) for key, order in facts.orders.items()})


def _facts_out(facts: Facts, orders: Any) -> dict[str, Any]:
    return {
        "o": orders,
        "ls": facts.last_seen,
        "b": _trait_out(facts.birthday),
        "pc": _trait_out(facts.preferred_channel),
    }


def facts_from_json(data: dict[str, Any]) -> Facts:
    orders = {
        key: Order(
            at, total, channel, eid, cancelled, tuple(map(tuple, refunds)) if refunds else ()
        )
        for key, (at, total, channel, eid, cancelled, refunds) in data["o"].items()
    }
    return Facts(orders, data["ls"], _trait_in(data["b"]), _trait_in(data["pc"]))


def _trait_out(trait: Trait | None) -> list[Any] | None:
    return None if trait is None else [trait.value, trait.stamp[0], trait.stamp[1]]


def _trait_in(data: list[Any] | None) -> Trait | None:
    return None if data is None else Trait(data[0], (data[1], data[2]))


def encode_state(state: CustomerState, partition: int) -> bytes:
    return orjson.dumps(
        {
            "p": partition,
            "c": state.customer_id,
            "f": _facts_out(state.facts, state.facts.orders),  # Orders as they are: _as_list
            "s": _standing_out(state.standing),
            "a": state.absorbed_into,
            "sp": state.survivor_partition,
        },
        default=_as_list,
    )


def _as_list(value: Any) -> list[Any]:
    """An :class:`Order` (a named tuple; orjson writes plain tuples only) as a list."""
    if isinstance(value, Order):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not part of a row")


def decode_state(raw: bytes) -> tuple[CustomerState, int]:
    """The state and the partition it lives on."""
    data = orjson.loads(raw)
    standing = _standing_in(data["s"])
    state = CustomerState(data["c"], facts_from_json(data["f"]), standing, data["a"], data["sp"])
    return state, int(data["p"])


class StoredRow(NamedTuple):
    """A row read for a tick: its standing and purchases decoded, the rest of its facts
    left as parsed JSON, to be written back unchanged (~40 % of a full decode and
    encode, which a sweep of every customer pays per due one)."""

    customer_id: str
    standing: Standing
    bought: list[Purchase]
    last_seen: int | None
    absorbed: bool
    data: dict[str, Any]


def indexed_parts(raw: bytes) -> tuple[str, int, int | None]:
    """(customer id, partition, next due or None) of a row, for the time index: its
    JSON parsed, nothing built (~2 µs; a whole decode is several times that, and a
    rebuild reads every row)."""
    data = orjson.loads(raw)
    due = None if data["a"] is not None else data["s"][5]  # _standing_out's next_due
    return data["c"], int(data["p"]), due


def read_stored(raw: bytes) -> StoredRow:
    data = orjson.loads(raw)
    facts = data["f"]
    bought = purchases_of(facts["o"].values())  # a stored order: an Order's fields in order
    standing = _standing_in(data["s"])
    return new_tuple(
        StoredRow, (data["c"], standing, bought, facts["ls"], data["a"] is not None, data)
    )


def restored(row: StoredRow, standing: Standing, partition: int) -> bytes:
    """The row with a new standing: the bytes ``encode_state`` gives for the state the
    row decodes to with that standing."""
    data = row.data
    data["p"], data["s"] = partition, _standing_out(standing)
    return orjson.dumps(data)


def _standing_out(s: Standing) -> list[Any]:
    scores = None if s.scores is None else list(s.scores)  # recency, frequency, monetary
    return [s.rfm, s.cpm, scores, s.version, s.thresholds_version, s.next_due, s.evaluated_day]


def _standing_in(data: list[Any]) -> Standing:
    rfm, cpm, scores, version, tv, due, day = data
    if not scores:
        scored = None
    elif len(scores) == 3:
        scored = new_tuple(Scores, scores)  # named, without __new__
    else:
        scored = Scores(*scores)  # refuses a row without exactly 3 scores
    return new_tuple(Standing, (rfm, cpm, scored, version, tv, due, day))  # named, no __new__
