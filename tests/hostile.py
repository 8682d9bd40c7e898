"""Hostile inputs for fuzz tests: what broken SDKs, careless exports and attackers send.

Strategies (hypothesis) and hand-made constants shared by the unit and the server-level
fuzz tests. ``mutated`` takes a valid JSON document and breaks one place in it, which
reaches much deeper into the mappers than random JSON (that fails at the first field).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

TEMPLATE_INJECTIONS = (
    "{{ 7*7 }}",
    "{% raw %}{{ x }}{% endraw %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "${7*7}",
    "<script>alert(1)</script>",
)
SHIFT_JIS_BYTES = "静岡煎茶 100g、ご購入ありがとうございます".encode("cp932")
MOJIBAKE = (
    SHIFT_JIS_BYTES.decode("latin-1"),  # Shift_JIS read as Latin-1
    "譁ｰ蜩∫┻骭ｲ",  # UTF-8 read as Shift_JIS
    "ã\x81\x93ã\x82\x93ã\x81«ã\x81¡ã\x81¯",  # UTF-8 read as Latin-1
)
ODD_TEXT = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u200b",
    "\u202etxt.exe",
    "ｶﾀｶﾅ",
    "１２３",
    "\ufeffBOM",
    "🍵" * 50,
    "x" * 5_000,
    "null",
    "undefined",
)
ZERO_AND_FAR_TIMES = (
    "0001-01-01T00:00:00Z",  # Go's zero time
    "1970-01-01T00:00:00Z",  # epoch zero
    "1899-12-30T00:00:00+09:00",  # Excel's day zero
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59Z",
    "2026-11-20T10:30:00",  # no zone
    "2026-13-45T99:99:99Z",
    "yesterday",
)
NEGATIVE_AMOUNTS = (-1, -1980, -0.5, -(10**12), -1e300)

hostile_text = st.one_of(
    st.sampled_from(TEMPLATE_INJECTIONS + MOJIBAKE + ODD_TEXT),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=3_000),
)
hostile_number = st.one_of(
    st.sampled_from(NEGATIVE_AMOUNTS),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
hostile_scalar = st.one_of(
    st.none(), hostile_text, hostile_number, st.sampled_from(ZERO_AND_FAR_TIMES)
)


def nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


json_values = st.recursive(
    hostile_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
hostile_value = st.one_of(
    json_values, st.sampled_from([nested(70), nested(250), nested(900), [], {}])
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    children = (
        document.items()
        if isinstance(document, dict)
        else enumerate(document)
        if isinstance(document, list)
        else ()
    )
    for key, child in children:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``document`` with ``value`` at ``path`` (``DELETE`` removes the key)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        copy = dict(document)
        new = replaced(document[head], rest, value)
        if new is DELETE:
            copy.pop(head)
        else:
            copy[head] = new
        return copy
    items = list(document)
    items[head] = replaced(document[head], rest, value)
    return [item for item in items if item is not DELETE]


DELETE = object()


@st.composite
def mutated(draw: st.DrawFn, document: Any, values: st.SearchStrategy[Any] = hostile_value) -> Any:
    """``document`` with one to three places replaced by hostile values, or removed."""
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        places = paths(document)
        if not places:
            break
        path = draw(st.sampled_from(places))
        document = replaced(document, path, draw(st.one_of(st.just(DELETE), values)))
    return document
