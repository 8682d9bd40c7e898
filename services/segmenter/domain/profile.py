"""The profile view of a customer: what journey, notifier and lookups read."""

from __future__ import annotations

from typing import Any

from services.segmenter.domain.calendar import BusinessCalendar
from services.segmenter.domain.figures import Figures, figures_of, purchases
from services.segmenter.domain.standing import CustomerState, Policy, Standing, effective_now

PROFILE_FIELDS = (
    "customer_id",
    "rfm_segment",
    "cpm_group",
    "r_score",
    "f_score",
    "m_score",
    "first_purchase_at",
    "last_purchase_at",
    "lifetime_orders",
    "lifetime_amount",
    "window_frequency",
    "window_monetary",
    "online_orders",
    "store_orders",
    "last_seen_at",
    "birthday",
    "preferred_channel",
    "version",
    "thresholds_version",
    "updated_at",
    "purchases",
)


def profile_of(state: CustomerState, now: int, policy: Policy) -> dict[str, Any]:
    """Every profile field (None where unknown); ``purchases`` is ``[[at, net, channel]]``
    oldest first, which the reports (F2, LTV, deciles as of a date) are computed from."""
    facts, standing, calendar = state.facts, state.standing, policy.calendar
    at = effective_now(now, facts)
    bought = purchases(facts)
    figures = figures_of(bought, calendar.day(at), calendar, policy.window_days)
    view: dict[str, Any] = dict.fromkeys(PROFILE_FIELDS)
    view.update(
        customer_id=state.customer_id,
        last_seen_at=facts.last_seen and calendar.iso(facts.last_seen),
        birthday=facts.birthday and facts.birthday.value,
        preferred_channel=facts.preferred_channel and facts.preferred_channel.value,
        purchases=[[p.at, p.net, p.channel] for p in bought],
    )
    view.update(timely_fields(standing, figures, at, calendar))
    if figures is not None:
        view.update(
            first_purchase_at=calendar.iso(figures.first_at),
            last_purchase_at=calendar.iso(figures.last_at),
            lifetime_orders=figures.lifetime_orders,
            lifetime_amount=figures.lifetime_amount,
            online_orders=figures.online_orders,
            store_orders=figures.store_orders,
        )
    return view


def timely_fields(
    standing: Standing, figures: Figures | None, at: int, calendar: BusinessCalendar
) -> dict[str, Any]:
    """The view's fields that time alone can change (all a tick rewrites): the standing,
    the trailing-window figures, and when it was judged."""
    scores = standing.scores
    return {
        "rfm_segment": standing.rfm,
        "cpm_group": standing.cpm,
        "r_score": scores and scores.recency,
        "f_score": scores and scores.frequency,
        "m_score": scores and scores.monetary,
        "window_frequency": figures and figures.window_frequency,
        "window_monetary": figures and figures.window_monetary,
        "version": standing.version,
        "thresholds_version": standing.thresholds_version,
        "updated_at": calendar.iso(at),
    }
