"""Given a raw event (valid, or mutated in any of its fields), when identity's plain reader
reads it, then it accepts exactly what the models accept, with the same fields, and
refuses with the models' own error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.codec import encode
from schemas.events import RAW_EVENT_ADAPTER, RAW_EVENT_TYPES, event_type_name
from schemas.examples import example
from schemas.identifiers import Identifiers
from schemas.plain import RAW_EVENT_READER

TYPES = [event_type_name(cls) for cls in RAW_EVENT_TYPES]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
AWKWARD = st.sampled_from(
    [
        "",
        " ",
        "x" * 129,
        "x" * 257,
        "x" * 2049,
        "2026-01-01T00:00:00",  # no zone
        "1999-12-31T23:59:59Z",  # before EventTime's range
        "2026-01-01T00:00:00+09:00",
        "web",
        "JPY",
        "jpy",
        -1,
        0,
        10**13,
        1.5,
        "12",
        [],
        {},
    ]
)


def paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += paths(value, (*at, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with 0–3 of its values replaced, removed, or given an extra key."""
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(paths(doc)))
        *parents, last = path
        holder = doc
        for step in parents:
            holder = holder[step]
        action = draw(st.sampled_from(["replace", "awkward", "remove", "extra", "null"]))
        if action == "replace":
            holder[last] = draw(JSON)
        elif action == "awkward":
            holder[last] = draw(AWKWARD)
        elif action == "null":
            holder[last] = None
        elif action == "remove" and isinstance(holder, dict):
            del holder[last]
        elif action == "extra" and isinstance(holder[last], dict):
            holder[last][draw(st.text(min_size=1, max_size=8))] = draw(JSON)
    return doc


def verdict(read: Any, raw: bytes) -> Any:
    try:
        return read(raw)
    except ValidationError as err:
        return err


def same_fields(plain: dict[str, Any], model: Any) -> None:
    """The dict holds the fields the model says were set, with the same values (a
    context's null extra keys are kept in the dict, dropped by the model)."""
    expected = model.model_dump(exclude_unset=True)
    context = plain.get("context")
    if isinstance(context, dict):
        plain = {**plain, "context": {k: v for k, v in context.items() if v is not None}}
        expected["context"] = {
            k: v for k, v in expected.get("context", {}).items() if v is not None
        }
    assert plain == expected
    assert Identifiers.present_in(plain["identifiers"]) == model.identifiers.present()


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_the_plain_reader_accepts_exactly_what_the_models_accept(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(TYPES))
    doc = orjson.loads(encode(example(kind, seed=data.draw(st.integers(0, 5)))))
    raw = orjson.dumps(data.draw(mutated(doc)))

    want, got = (
        verdict(RAW_EVENT_ADAPTER.validate_json, raw),
        verdict(RAW_EVENT_READER.validate_json, raw),
    )

    if isinstance(want, ValidationError):
        assert isinstance(got, ValidationError), f"accepted what the models refuse: {raw!r}"
        assert got.errors(include_context=False) == want.errors(include_context=False)
    elif isinstance(got, dict):
        same_fields(got, want)
    else:
        assert got == want


@pytest.mark.parametrize("kind", TYPES)
def test_every_type_without_python_checks_is_read_into_a_dict(kind: str) -> None:
    got = RAW_EVENT_READER.validate_json(encode(example(kind)))

    with_checks = {"cart_viewed", "checkout_started", "order_completed", "order_refunded"}
    with_checks |= {"pos_purchased", "profile_updated"}  # line amounts; "changes nothing"
    assert isinstance(got, dict) == (kind not in with_checks)
    assert sorted(RAW_EVENT_READER.plain_types) == sorted(set(TYPES) - with_checks)


def test_an_event_with_no_identifier_gets_the_models_error() -> None:
    doc = orjson.loads(encode(example("page_viewed")))
    doc["identifiers"] = {"anonymous_id": None}

    with pytest.raises(ValidationError, match="at least one identifier is required"):
        RAW_EVENT_READER.validate_json(orjson.dumps(doc))


def test_a_plain_events_time_is_the_models_time() -> None:
    event = RAW_EVENT_READER.validate_json(encode(example("page_viewed")))

    assert isinstance(event, dict)
    assert event["occurred_at"].tzinfo is not None
    assert event["occurred_at"] < datetime(2100, 1, 1, tzinfo=UTC)
