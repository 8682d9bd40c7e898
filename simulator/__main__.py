"""``python -m simulator``: run the simulated shop against a running gateway and Kafka.

    python -m simulator [--seed 42] [--rate 50] [--speed 3600] [--customers 2000]
                        [--seconds N] [--start 2026-11-20T09:00:00+09:00] [--log FILE]

Web and app events go to the gateway's ``/v1/batch`` with the write keys of
``KIZUNA_GATEWAY_WRITE_KEYS`` (one for "web", one for "app"); LINE follow / unfollow /
accountLink go to ``/v1/line/webhook`` signed with ``KIZUNA_GATEWAY_LINE_CHANNEL_SECRET``
(skipped and counted when it is unset); POS receipts, mall orders, app locations, consents
and card registrations are produced straight to the raw topics. Ctrl-C / SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import uuid
from collections import Counter
from datetime import datetime

from runtime.settings import load_settings
from services.gateway.settings import GatewaySettings
from simulator.model import Shop
from simulator.runner import Pace, Runner
from simulator.settings import SimulatorSettings
from simulator.sinks import Gateway, RawTopics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=42, help="same seed, same shop and story")
    parser.add_argument("--rate", type=float, default=50.0, help="events per real second")
    parser.add_argument("--speed", type=float, default=3600.0, help="simulated s per real s")
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=None, help="stop after N real seconds")
    parser.add_argument("--start", type=datetime.fromisoformat, default=None, help="tz-aware")
    parser.add_argument("--run-id", default=None, help="prefix of event ids (default: random)")
    parser.add_argument("--log", default=None, help="log file (default: stderr, warnings only)")
    return parser.parse_args(argv)


def write_keys(gateway: GatewaySettings) -> dict[str, str]:
    keys = {str(source): key for key, source in sorted(gateway.write_keys.items())}
    missing = {"web", "app"} - keys.keys()
    if missing:
        raise SystemExit(f"KIZUNA_GATEWAY_WRITE_KEYS has no key for {sorted(missing)}")
    return keys


async def main(args: argparse.Namespace) -> None:
    settings, sim, gw = load_settings(), SimulatorSettings(), GatewaySettings()
    start = args.start or datetime.now().astimezone()
    pace = Pace(args.rate, args.speed)
    shop = Shop(
        args.seed,
        start=start,
        step=pace.step,
        customers=args.customers,
        run_id=args.run_id or uuid.uuid4().hex[:8],
        line_provider=gw.line_provider,
    )
    stats: Counter[str] = Counter()
    secret = gw.line_channel_secret.get_secret_value() if gw.line_channel_secret else None
    gateway = Gateway(sim.gateway_url, write_keys(gw), secret, stats)
    raw = RawTopics(settings.kafka, settings.namespace, stats)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Runner(shop, pace, gateway, raw, stats).run(stop, sim.stats_file, args.seconds)
    finally:
        await gateway.close()
        raw.close()


def configure(log_file: str | None) -> None:
    if log_file:
        logging.basicConfig(
            filename=log_file,
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
    else:
        logging.basicConfig(level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


if __name__ == "__main__":
    arguments = parse_args()
    configure(arguments.log)
    asyncio.run(main(arguments))
