"""The live view reads Prometheus text and shows "-" for what nobody reports."""

from __future__ import annotations

from rich.console import Console

from simulator.observe import Scrape, parse
from simulator.view import Observation, Rates, render, segment_counts

TRANSITIONS = "kizuna_segmenter_segment_transitions_total"
METRICS = f"""
# TYPE {TRANSITIONS} counter
{TRANSITIONS}{{dimension="cpm",from_segment="",to_segment="first",reason="event"}} 5.0
{TRANSITIONS}{{dimension="cpm",from_segment="first",to_segment="repeat",reason="event"}} 2.0
# TYPE kizuna_identity_merges_total counter
kizuna_identity_merges_total 3.0
"""


def test_when_transitions_are_counted_then_segments_hold_arrivals_minus_departures() -> None:
    scrape = Scrape(parse(METRICS))
    assert segment_counts(scrape) == {("cpm", "first"): 3.0, ("cpm", "repeat"): 2.0}
    assert scrape.total("kizuna_identity_merges_total") == 3.0


def test_when_a_worker_is_down_then_its_figures_are_dashes() -> None:
    assert Scrape(None).total("kizuna_identity_merges_total") is None
    console = Console(width=140, record=True)
    obs = Observation(1.0, {"identity": Scrape(None)}, {}, None)
    console.print(render(obs, Rates(), "t"))
    assert "merges            │     -" in console.export_text()


def test_when_a_counter_grows_then_the_rate_is_per_second() -> None:
    rates = Rates()
    assert rates.rate("x", 10.0, at=1.0) is None
    assert rates.rate("x", 30.0, at=3.0) == 10.0
