"""HTTP lookups on the worker's web server: profile view and reports."""

from __future__ import annotations

from datetime import date
from typing import Any

import faust
import redis.asyncio as aioredis
from faust.web import Request, Response, View

from services.segmenter.adapters.profiles import read_profile
from services.segmenter.domain.standing import Policy
from services.segmenter.reporting import build_report
from services.segmenter.settings import SegmenterSettings


def add_pages(
    app: faust.App, redis: aioredis.Redis, namespace: str, seg: SegmenterSettings, policy: Policy
) -> None:
    @app.page("/customers/{customer_id}/profile")
    class ProfileLookup(View):
        async def get(self, request: Request, customer_id: str) -> Response:
            profile = await read_profile(redis, namespace, customer_id)
            if profile is None:
                return self.json({"error": "unknown customer"}, status=404)
            return self.json(profile)

    @app.page("/reports/{name}")
    class Reports(View):
        async def get(self, request: Request, name: str) -> Response:
            try:
                as_of = date.fromisoformat(request.query.get("as_of", ""))
                report = await build_report(
                    redis, namespace, name, as_of, policy, seg.f2_within_days
                )
            except KeyError:
                return self.json({"error": f"unknown report {name!r}"}, status=404)
            except ValueError as err:
                return self.json({"error": str(err)}, status=400)
            body: Any = report.as_dict()
            return self.json(body)
