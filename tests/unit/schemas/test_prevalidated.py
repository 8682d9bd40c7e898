"""``prevalidated``: a model built from fields known valid is the model validation gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from schemas.base import prevalidated
from schemas.codec import encode
from schemas.segments import RfmScores, SegmentChanged
from services.segmenter.domain.scoring import CPM_GROUPS, RFM_SEGMENTS

build_change = prevalidated(SegmentChanged)

scores = st.builds(
    RfmScores,
    recency=st.integers(1, 5),
    frequency=st.integers(1, 5),
    monetary=st.integers(1, 5),
)
segment_changes = st.fixed_dictionaries(
    {
        "customer_id": st.from_regex(r"^[a-z0-9:-]{1,40}$", fullmatch=True),
        "dimension": st.sampled_from(["rfm", "cpm"]),
        "to_segment": st.sampled_from(RFM_SEGMENTS + CPM_GROUPS),
        "reason": st.sampled_from(["event", "time", "merge", "split", "thresholds"]),
        "version": st.integers(1, 10**6),
        "thresholds_version": st.integers(0, 10**3),
        "as_of": st.integers(946_684_800, 4_070_908_800).map(
            lambda ts: datetime.fromtimestamp(ts, UTC)
        ),
    },
    optional={
        "from_segment": st.none() | st.sampled_from(RFM_SEGMENTS + CPM_GROUPS),
        "scores": st.none() | scores,
        "schema_version": st.just(1),
    },
)


@given(segment_changes, st.randoms())
def test_when_fields_are_valid_then_the_build_is_the_validated_model(
    fields: dict[str, Any], rng: Random
) -> None:
    validated = SegmentChanged(**fields)
    keys = list(fields)
    if rng.random() < 0.5:  # in any order: put in the model's order (its encoding's)
        rng.shuffle(keys)
    built = build_change({key: fields[key] for key in keys})
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_dump() == validated.model_dump()
    assert encode(built) == encode(validated)
    assert hash(built) == hash(validated)
    assert built == SegmentChanged.model_construct(**fields)


def test_when_a_default_is_left_out_then_it_is_filled_and_not_counted_as_set() -> None:
    built = build_change(
        {
            "customer_id": "c1",
            "dimension": "rfm",
            "to_segment": "Loyal",
            "reason": "time",
            "version": 1,
            "thresholds_version": 0,
            "as_of": datetime(2026, 1, 1, tzinfo=UTC),
        }
    )
    assert (built.from_segment, built.scores, built.schema_version) == (None, None, 1)
    assert "from_segment" not in built.model_fields_set
    with pytest.raises(Exception, match="frozen"):
        built.version = 2  # type: ignore[misc]  # still frozen


def test_when_a_required_field_is_missing_or_unknown_then_it_is_refused() -> None:
    fields = {"customer_id": "c1", "dimension": "rfm", "to_segment": "Loyal", "reason": "time"}
    with pytest.raises(TypeError, match=r"missing \['as_of', 'thresholds_version', 'version'\]"):
        build_change(dict(fields))
    complete = {**fields, "version": 1, "thresholds_version": 0, "as_of": datetime.now(UTC)}
    with pytest.raises(TypeError, match=r"unknown \['colour'\]"):
        build_change({**complete, "colour": "red"})


def test_when_a_model_has_a_default_factory_then_no_builder_is_made() -> None:
    class Listed(BaseModel):
        items: list[int] = Field(default_factory=list)

    with pytest.raises(TypeError, match="default factory"):
        prevalidated(Listed)


def test_when_built_twice_then_the_builds_share_nothing_mutable() -> None:
    fields = {
        "customer_id": "c1",
        "dimension": "cpm",
        "to_segment": CPM_GROUPS[0],
        "reason": "event",
        "version": 1,
        "thresholds_version": 0,
        "as_of": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=1),
    }
    first, second = build_change(dict(fields)), build_change(dict(fields))
    assert first == second
    assert first.__dict__ is not second.__dict__
    assert first.model_fields_set is not second.model_fields_set
