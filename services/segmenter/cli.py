"""Segmenter command line.

python -m services.segmenter.cli profile <customer_id> [--json]
python -m services.segmenter.cli report {deciles,cpm,f2,repeat,churn,ltv} \
        --as-of YYYY-MM-DD [--json]
python -m services.segmenter.cli clock --as-of 2026-11-22T00:00:00+09:00
python -m services.segmenter.cli thresholds snapshot
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, datetime

import orjson
from rich.console import Console
from rich.table import Table

from runtime.kafka import create_producer
from runtime.redis import create_redis
from runtime.settings import Settings, load_settings
from schemas.codec import encode
from schemas.topics import CUSTOMER_EVENTS
from services.segmenter.adapters.population import RedisPopulation
from services.segmenter.adapters.profiles import read_profile
from services.segmenter.messages import ClockSet, control_topic
from services.segmenter.reporting import REPORT_NAMES, build_report, render
from services.segmenter.settings import SegmenterSettings, load_segmenter_settings


def _print_json(value: object) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


async def profile(settings: Settings, customer_id: str, as_json: bool) -> int:
    redis = create_redis(settings)
    found = await read_profile(redis, settings.namespace, customer_id)
    await redis.aclose()
    if found is None:
        Console(stderr=True).print(f"no profile for {customer_id}")
        return 1
    if as_json:
        _print_json(found)
        return 0
    table = Table(title=f"customer {customer_id}")
    table.add_column("field")
    table.add_column("value")
    for name, value in sorted(found.items()):
        table.add_row(name, "" if value is None else str(value))
    Console().print(table)
    return 0


async def report(
    settings: Settings, seg: SegmenterSettings, name: str, as_of: date, as_json: bool
) -> int:
    redis = create_redis(settings)
    built = await build_report(
        redis, settings.namespace, name, as_of, seg.policy(settings), seg.f2_within_days
    )
    await redis.aclose()
    if as_json:
        _print_json(built.as_dict())
    else:
        Console().print(render(built))
    return 0


def set_clock(settings: Settings, as_of: datetime) -> int:
    """Pin every worker's clock: one message to each control partition."""
    producer = create_producer(settings.kafka)
    for partition in range(settings.partitions or CUSTOMER_EVENTS.partitions):
        producer.produce(
            control_topic(settings.namespace),
            key=b"clock",
            value=encode(ClockSet(as_of=as_of)),
            partition=partition,
        )
    return 0 if producer.flush(10) == 0 else 1


async def snapshot(settings: Settings, seg: SegmenterSettings) -> int:
    redis = create_redis(settings)
    policy = seg.policy(settings)
    today = policy.calendar.day(int(datetime.now().astimezone().timestamp()))
    published = await RedisPopulation(redis, settings.namespace).snapshot(
        today, policy.thresholds, seg.quantile_dimensions
    )
    await redis.aclose()
    print(published)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.segmenter.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    lookup = commands.add_parser("profile", help="a customer's profile view")
    lookup.add_argument("customer_id")
    lookup.add_argument("--json", action="store_true")
    reporting = commands.add_parser("report", help="a marketer report as of a date")
    reporting.add_argument("name", choices=REPORT_NAMES)
    reporting.add_argument("--as-of", type=date.fromisoformat, required=True)
    reporting.add_argument("--json", action="store_true")
    clock = commands.add_parser("clock", help="pin the workers' clock (event time)")
    clock.add_argument("--as-of", type=datetime.fromisoformat, required=True)
    commands.add_parser("thresholds", help="publish a quantile threshold snapshot")
    args = parser.parse_args(argv)
    settings, seg = load_settings(), load_segmenter_settings()
    if args.command == "profile":
        return asyncio.run(profile(settings, args.customer_id, args.json))
    if args.command == "report":
        return asyncio.run(report(settings, seg, args.name, args.as_of, args.json))
    if args.command == "clock":
        return set_clock(settings, args.as_of)
    return asyncio.run(snapshot(settings, seg))


if __name__ == "__main__":
    raise SystemExit(main())
