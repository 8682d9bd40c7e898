"""HTTP on the journey worker: the scenarios running, reports, why a customer was skipped."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import faust
from faust.web import Request, Response, View

from services.journey.adapters.reports import JourneyReports
from services.journey.domain.catalogue import Context
from services.journey.domain.measure import JourneyReport, report_of


def report_body(report: JourneyReport) -> dict[str, Any]:
    body = asdict(report)
    body["incremental_conversion"] = report.incremental_conversion
    body["recovery"]["recovery_rate"] = report.recovery.recovery_rate
    for variant, figures in zip(body["variants"], report.variants, strict=True):
        variant["conversion_rate"] = figures.conversion_rate
    return body


def add_pages(app: faust.App, reports: JourneyReports, ctx: Context) -> None:
    @app.page("/journeys")
    class Journeys(View):
        async def get(self, request: Request) -> Response:
            live = [
                {"id": s.id, "version": s.version, "name": s.name, "purpose": s.purpose.value}
                for s in ctx.catalogue.live.values()
            ]
            return self.json({"journeys": live})

    @app.page("/journeys/{journey}/report")
    class Report(View):
        async def get(self, request: Request, journey: str) -> Response:
            if journey not in ctx.catalogue.live:
                return self.json({"error": f"unknown journey {journey!r}"}, status=404)
            counters = await reports.counters(journey)
            return self.json(report_body(report_of(journey, counters)))

    @app.page("/customers/{customer_id}/journeys/why")
    class Why(View):
        async def get(self, request: Request, customer_id: str) -> Response:
            return self.json(
                {"customer_id": customer_id, "skipped": await reports.why(customer_id)}
            )
