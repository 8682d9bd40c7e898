"""Given customers' purchase histories, when a marketer asks for a report as of a date,
then the figures match the ones worked out by hand."""

from __future__ import annotations

from services.segmenter.domain.calendar import BusinessCalendar
from services.segmenter.domain.figures import Purchase
from services.segmenter.domain.reports import (
    History,
    Lens,
    churn_rate,
    cpm_distribution,
    deciles,
    f2_conversion,
    ntile,
    realised_ltv,
    repeat_rate,
)
from tests.unit.segmenter.builders import on_day, ts

CALENDAR = BusinessCalendar()
START = CALENDAR.day(ts(on_day(0)))  # 2026-01-05


def customer(name: str, *bought: tuple[int, int]) -> History:
    return History(name, tuple(Purchase(ts(on_day(day)), yen, "online") for day, yen in bought))


def lens(day: int) -> Lens:
    return Lens(START + day, CALENDAR)


def test_when_rows_do_not_divide_by_ten_then_ntile_gives_the_first_groups_one_more() -> None:
    assert ntile(23) == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert ntile(7) == [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]


def test_when_deciles_are_cut_then_biggest_spenders_come_first_ties_by_id() -> None:
    people = [customer(f"c{i:02d}", (0, 1_000 * (i % 12 + 1))) for i in range(12)]
    people.append(customer("old", (-400, 99_000)))  # outside the 365-day window

    report = deciles(people, lens(10))

    rows = report.as_dict()["rows"]
    total = sum(1_000 * (i % 12 + 1) for i in range(12))
    assert report.summary == {"revenue_yen": total}
    assert [row["customers"] for row in rows] == [2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    assert rows[0]["revenue_yen"] == 12_000 + 11_000
    assert rows[-1]["revenue_yen"] == 1_000
    assert rows[-1]["cumulative_share"] == 1.0


def test_when_cpm_is_counted_as_of_a_date_then_later_purchases_do_not_count() -> None:
    people = [
        customer("a", (0, 3_000)),
        customer("b", (0, 3_000), (30, 3_000)),
        customer("c", (0, 50_000), (100, 30_000)),
        customer("d", (0, 3_000), (200, 3_000)),  # second purchase after the as-of day
    ]

    rows = {
        row["group"]: row["customers"]
        for row in cpm_distribution(people, lens(120)).as_dict()["rows"]
    }

    assert rows["初回客/現役"] == 2
    assert rows["よちよち客/現役"] == 1
    assert rows["流行客/現役"] == 1
    assert sum(rows.values()) == 4
    assert len(rows) == 10


def test_when_f2_conversion_is_asked_then_second_purchases_within_n_days_count_per_cohort() -> None:
    people = [
        customer("a", (0, 1_000), (20, 1_000)),  # January cohort, converted
        customer("b", (1, 1_000), (120, 1_000)),  # January, too late for 90 days
        customer("c", (2, 1_000)),  # January, single purchase
        customer("d", (40, 1_000), (50, 1_000)),  # February cohort, converted
    ]

    report = f2_conversion(people, lens(200), within_days=90)

    assert report.as_dict()["rows"] == [
        {"cohort": "2026-01", "first_buyers": 3, "second_buyers": 1, "f2_rate": 0.3333},
        {"cohort": "2026-02", "first_buyers": 1, "second_buyers": 1, "f2_rate": 1.0},
    ]
    assert report.summary["rate"] == 0.5


def test_when_repeat_and_churn_rates_are_asked_then_they_follow_the_definitions() -> None:
    people = [
        customer("a", (0, 1_000), (10, 1_000)),  # active at day 230, churned by 260
        customer("b", (0, 1_000), (250, 1_000)),  # active, bought again: not churned
        customer("c", (0, 1_000)),  # active at 230 (230 < 240), churned at 260
        customer("d", (245, 1_000)),  # not a customer yet at the period start
    ]

    repeat = repeat_rate(people, lens(260))
    churn = churn_rate(people, lens(260), period_days=30)

    assert repeat.as_dict()["rows"] == [{"buyers": 4, "repeaters": 2, "repeat_rate": 0.5}]
    assert churn.rows[0][1:] == (3, 2, 0.6667)


def test_when_ltv_is_asked_then_only_cohorts_with_the_full_horizon_get_a_figure() -> None:
    people = [
        customer("a", (0, 10_000), (100, 5_000), (400, 7_000)),
        customer("b", (3, 20_000)),
        customer("c", (200, 9_000)),  # 2026-07 cohort: not 12 months old yet
    ]

    report = realised_ltv(people, lens(500))

    assert report.as_dict()["rows"] == [
        {"cohort": "2026-01", "customers": 2, "ltv_12m_yen": 17_500, "ltv_24m_yen": None},
        {"cohort": "2026-07", "customers": 1, "ltv_12m_yen": None, "ltv_24m_yen": None},
    ]
