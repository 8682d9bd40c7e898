"""Journey reports from the counters: conversion per variant against the holdout, and
the cart-recovery figures marketers ask for (domain.md, "KPIs")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VariantFigures:
    variant: str
    entered: int
    sent: int
    converted: int
    revenue: int

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.entered if self.entered else 0.0


@dataclass(frozen=True, slots=True)
class CartRecovery:
    abandoned_carts: int
    lost_opportunity_yen: int
    recovered_orders: int
    recovered_revenue_yen: int

    @property
    def recovery_rate(self) -> float:
        return self.recovered_orders / self.abandoned_carts if self.abandoned_carts else 0.0


@dataclass(frozen=True, slots=True)
class JourneyReport:
    journey: str
    variants: tuple[VariantFigures, ...]
    exits: dict[str, int]
    skipped: dict[str, int]
    recovery: CartRecovery

    @property
    def incremental_conversion(self) -> float | None:
        """Treated conversion rate minus the holdout's (None without a holdout)."""
        holdout = [v for v in self.variants if v.variant == "holdout"]
        treated = [v for v in self.variants if v.variant != "holdout"]
        if not holdout or not holdout[0].entered or not treated:
            return None
        entered = sum(v.entered for v in treated)
        rate = sum(v.converted for v in treated) / entered if entered else 0.0
        return rate - holdout[0].conversion_rate


def report_of(journey: str, counters: dict[str, int]) -> JourneyReport:
    def by(prefix: str) -> dict[str, int]:
        return {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith(prefix + ":")}

    entered, sent, converted, revenue = by("entered"), by("sent"), by("converted"), by("revenue")
    names = sorted(set(entered) | set(sent) | set(converted))
    variants = tuple(
        VariantFigures(n, entered.get(n, 0), sent.get(n, 0), converted.get(n, 0), revenue.get(n, 0))
        for n in names
    )
    recovery = CartRecovery(
        abandoned_carts=sum(entered.values()),
        lost_opportunity_yen=sum(by("value").values()),
        recovered_orders=sum(by("recovered").values()),
        recovered_revenue_yen=sum(by("recovered_revenue").values()),
    )
    return JourneyReport(journey, variants, by("exited"), by("skipped"), recovery)
