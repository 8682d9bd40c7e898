"""Given the reference's RFM grid, fixed bands and CPM rules, when customers are scored,
then each lands exactly where a marketer working by hand would put them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.segmenter.domain.scoring import (
    CPM_GROUPS,
    RFM_SEGMENTS,
    CpmRules,
    Scores,
    Thresholds,
    cpm_group,
    rfm_scores,
    rfm_segment,
    score_at_least,
    score_at_most,
)

RULES = CpmRules()
FIXED = Thresholds()


def test_when_every_r_f_pair_is_looked_up_then_each_maps_to_exactly_one_known_segment() -> None:
    landed = {(r, f): rfm_segment(r, f) for r in range(1, 6) for f in range(1, 6)}

    assert len(landed) == 25
    assert set(landed.values()) == set(RFM_SEGMENTS)  # every segment reachable
    assert landed[(5, 1)] == "New Customers"
    assert landed[(5, 4)] == landed[(5, 5)] == "Champions"
    assert landed[(4, 1)] == "Promising"
    assert landed[(3, 3)] == "Need Attention"
    assert landed[(3, 2)] == "About to Sleep"
    assert landed[(2, 3)] == landed[(1, 4)] == "At Risk"
    assert landed[(1, 5)] == landed[(2, 5)] == "Can't Lose Them"
    assert landed[(1, 1)] == landed[(2, 2)] == "Hibernating"


@pytest.mark.parametrize(
    ("days", "frequency", "yen", "expected"),
    [
        (0, 1, 4_999, Scores(5, 1, 1)),
        (30, 2, 5_000, Scores(5, 2, 2)),
        (31, 3, 19_999, Scores(4, 3, 2)),
        (90, 4, 20_000, Scores(4, 3, 3)),
        (91, 5, 50_000, Scores(3, 4, 4)),
        (180, 9, 99_999, Scores(3, 4, 4)),
        (181, 10, 100_000, Scores(2, 5, 5)),
        (365, 0, 0, Scores(2, 1, 1)),
        (366, 0, 0, Scores(1, 1, 1)),
    ],
)
def test_when_fixed_bands_score_a_customer_then_band_edges_are_inclusive_as_documented(
    days: int, frequency: int, yen: int, expected: Scores
) -> None:
    assert rfm_scores(days, frequency, yen, FIXED) == expected


def test_when_quantile_cut_wobbles_then_hysteresis_keeps_the_previous_score() -> None:
    thresholds = Thresholds(
        version=3, monetary_cuts=(5_000, 20_000, 50_000, 100_000), hysteresis=0.05
    )
    was = Scores(5, 1, 4)

    just_below = rfm_scores(0, 1, 49_000, thresholds, previous=was)
    far_below = rfm_scores(0, 1, 40_000, thresholds, previous=was)
    first_time = rfm_scores(0, 1, 49_000, thresholds)

    assert just_below.monetary == 4  # within 5 % of the 50,000 cut: no flap
    assert far_below.monetary == 3
    assert first_time.monetary == 3


@pytest.mark.parametrize(
    ("orders", "tenure", "yen", "recency", "expected"),
    [
        (1, 0, 3_000, 0, "初回客/現役"),
        (1, 0, 300_000, 239, "初回客/現役"),
        (1, 0, 3_000, 240, "初回客/離脱"),
        (2, 89, 200_000, 10, "よちよち客/現役"),
        (2, 90, 69_999, 10, "コツコツ客/現役"),
        (5, 400, 69_999, 300, "コツコツ客/離脱"),
        (3, 90, 70_000, 10, "流行客/現役"),
        (3, 209, 70_000, 10, "流行客/現役"),
        (3, 210, 70_000, 10, "優良客/現役"),
        (8, 700, 500_000, 240, "優良客/離脱"),
    ],
)
def test_when_cpm_rules_are_checked_in_order_then_half_open_intervals_decide_the_group(
    orders: int, tenure: int, yen: int, recency: int, expected: str
) -> None:
    assert cpm_group(orders, tenure, yen, recency, RULES) == expected


def test_when_every_cpm_input_is_tried_then_it_lands_in_one_of_the_ten_groups() -> None:
    groups = {
        cpm_group(orders, tenure, yen, recency, RULES)
        for orders in (1, 2, 3)
        for tenure in (0, 89, 90, 209, 210, 1000)
        for yen in (0, 69_999, 70_000)
        for recency in (0, 239, 240)
        if orders > 1 or tenure == 0
    }

    assert groups == set(CPM_GROUPS)
    assert cpm_group(0, 0, 0, 0, RULES) is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 400), min_size=1, max_size=6),
    st.integers(-5, 420),
)
def test_when_a_value_meets_cut_points_then_the_score_counts_the_cuts_it_reached_or_passed(
    bounds: list[int], value: int
) -> None:
    cuts = tuple(sorted(bounds))  # quantile cuts may repeat

    assert score_at_least(value, cuts) == 1 + sum(1 for cut in cuts if value >= cut)
    assert score_at_most(value, cuts) == 1 + len(cuts) - sum(1 for cut in cuts if value > cut)


@pytest.mark.parametrize("name", ["recency_edges", "frequency_cuts", "monetary_cuts"])
def test_when_thresholds_are_configured_out_of_order_then_they_are_refused_by_name(
    name: str,
) -> None:
    with pytest.raises(ValueError, match=f"{name} must be in ascending order"):
        Thresholds(**{name: (10, 5, 20, 30)})
