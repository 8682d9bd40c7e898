"""``python -m services.journey.cli``: check scenario files, read reports and skip records.

check [DIR]          validate every scenario file (exit 1 with the errors)
report [JOURNEY]     conversions per variant vs holdout, cart recovery
why CUSTOMER_ID      why messages were skipped or deferred for a customer
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from runtime.redis import create_redis
from runtime.settings import load_settings
from services.journey.adapters.reports import JourneyReports
from services.journey.adapters.scenarios import ScenarioError, load_scenarios, load_stores
from services.journey.domain.measure import report_of
from services.journey.settings import load_journey_settings
from services.journey.web import report_body

console = Console()


def check(directory: Path, stores: Path) -> int:
    try:
        scenarios = load_scenarios(directory)
        known = load_stores(stores)
    except ScenarioError as err:
        console.print(f"[red]✗[/red] {err}")
        return 1
    for s in scenarios:
        console.print(f"[green]✓[/green] {s.id} v{s.version} — {s.name} ({len(s.steps)} steps)")
    console.print(f"[green]✓[/green] {len(known)} stores")
    return 0


async def report(journey: str | None, as_json: bool) -> int:
    settings = load_settings()
    redis = create_redis(settings)
    try:
        reports = JourneyReports(redis, settings.namespace)
        names = [journey] if journey else await reports.journeys()
        bodies = [report_body(report_of(n, await reports.counters(n))) for n in names]
    finally:
        await redis.aclose()
    if as_json:
        sys.stdout.write(orjson.dumps(bodies, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    for body in bodies:
        table = Table(title=f"journey {body['journey']}")
        for column in ("variant", "entered", "sent", "converted", "conv. rate", "revenue ¥"):
            table.add_column(column, justify="right")
        for v in body["variants"]:
            table.add_row(
                v["variant"],
                str(v["entered"]),
                str(v["sent"]),
                str(v["converted"]),
                f"{v['conversion_rate']:.2%}",
                f"{v['revenue']:,}",
            )
        console.print(table)
        r = body["recovery"]
        lift = body["incremental_conversion"]
        console.print(
            f"carts {r['abandoned_carts']} · lost opportunity ¥{r['lost_opportunity_yen']:,} · "
            f"recovered {r['recovered_orders']} (¥{r['recovered_revenue_yen']:,}) · "
            f"recovery rate {r['recovery_rate']:.2%} · incremental conversion "
            + ("n/a" if lift is None else f"{lift:+.2%}")
        )
        if body["skipped"]:
            console.print(
                "skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(body["skipped"].items()))
            )
    return 0


async def why(customer_id: str) -> int:
    settings = load_settings()
    redis = create_redis(settings)
    try:
        records = await JourneyReports(redis, settings.namespace).why(customer_id)
    finally:
        await redis.aclose()
    sys.stdout.write(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.journey.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    checking = sub.add_parser("check", help="validate scenario files")
    checking.add_argument("directory", nargs="?", type=Path)
    reporting = sub.add_parser("report", help="conversions and cart recovery")
    reporting.add_argument("journey", nargs="?")
    reporting.add_argument("--json", action="store_true")
    asking = sub.add_parser("why", help="skip records of one customer")
    asking.add_argument("customer_id")
    args = parser.parse_args(argv)
    if args.command == "check":
        journey = load_journey_settings()
        return check(args.directory or journey.scenarios_dir, journey.stores_file)
    if args.command == "report":
        return asyncio.run(report(args.journey, args.json))
    return asyncio.run(why(args.customer_id))


if __name__ == "__main__":
    sys.exit(main())
