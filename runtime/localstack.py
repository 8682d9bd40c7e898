"""The local Kafka + Redis stack as seen from Python: health checks and start/stop.

``deploy/local/stack.sh`` does the work; this module waits for health (used by the
script) and lets the test harness start the stack once per session. It also picks the
ports the processes that the tests and benches start listen on (:func:`free_port`).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parent.parent
STACK_SCRIPT = ROOT / "deploy" / "local" / "stack.sh"


_HANDED_OUT: set[int] = set()
_PICK = random.Random()  # its own: tests may seed the module's


def free_port() -> int:
    """A loopback port nothing listens on, for a local process (a worker the tests or
    a bench start) to bind, below the kernel's ephemeral range. A port the kernel picks
    for ``bind(0)`` comes from that range, which is also where it takes the local ports
    of outgoing connections: one of the suite's connections to Kafka or Redis took such
    a port in the seconds before a worker bound it (CI failed with "address already in
    use")."""
    below = _ephemeral_start()
    while True:
        port = _PICK.randrange(10_000, below)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # someone listens there (the stack's Kafka or Redis, a worker)
        _HANDED_OUT.add(port)
        return port


def _ephemeral_start() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768  # Linux's default
    return max(low, 10_001)


def _port_open(address: str) -> bool:
    host, _, port = address.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def kafka_healthy(bootstrap: str, timeout: float = 2.0) -> bool:
    if not _port_open(bootstrap):
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(metadata.brokers)


def redis_healthy(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def wait_healthy(bootstrap: str, redis_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        kafka_ok, redis_ok = kafka_healthy(bootstrap), redis_healthy(redis_url)
        if kafka_ok and redis_ok:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout:.0f}s: kafka ok={kafka_ok}, redis ok={redis_ok}")
        time.sleep(0.5)


@dataclass(frozen=True)
class StackAddress:
    kafka: str
    redis: str


class LocalStack:
    """Start/stop the scripted local stack (used when no stack was given to the tests)."""

    def __init__(self, local_dir: Path | None = None) -> None:
        self.env = dict(os.environ, PYTHON=sys.executable)
        if local_dir is not None:
            self.env["KIZUNA_LOCAL_DIR"] = str(local_dir)

    def address(self) -> StackAddress:
        out = self._run("env", capture=True)
        values = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
        return StackAddress(kafka=values["KIZUNA_KAFKA"], redis=values["KIZUNA_REDIS"])

    def up(self) -> StackAddress:
        self._run("up")
        return self.address()

    def down(self) -> None:
        self._run("down")

    def _run(self, command: str, capture: bool = False) -> str:
        done = subprocess.run(
            [str(STACK_SCRIPT), command],
            env=self.env,
            check=True,
            text=True,
            capture_output=capture,
        )
        return done.stdout or ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runtime.localstack")
    parser.add_argument("command", choices=["wait"])
    parser.add_argument("--kafka", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)
    try:
        wait_healthy(args.kafka, args.redis, args.timeout)
    except TimeoutError as err:
        sys.exit(f"local stack not healthy: {err}")


if __name__ == "__main__":
    main()
