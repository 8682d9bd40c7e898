"""Create the topic catalogue on a broker, idempotently.

python -m runtime.topics ensure [--bootstrap HOST:PORT] [--namespace NS] [--partitions N]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import TypeAdapter

from runtime.kafka import create_admin
from runtime.settings import load_settings
from schemas.topics import CATALOGUE, TopicSpec

log = logging.getLogger(__name__)
_RAW: TypeAdapter[bytes] = TypeAdapter(bytes)


def ensure_topics(
    admin: AdminClient,
    namespace: str,
    *,
    partitions: int | None = None,
    specs: Iterable[TopicSpec] = CATALOGUE,
    timeout: float = 30.0,
) -> list[str]:
    """Create missing topics; return the names created. Existing topics are left as they are."""
    wanted = {
        spec.name(namespace): NewTopic(
            spec.name(namespace),
            num_partitions=partitions or spec.partitions,
            replication_factor=1,
            config=spec.config(),
        )
        for spec in specs
    }
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [topic for name, topic in wanted.items() if name not in existing]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


@dataclass(frozen=True)
class ChangelogSpec(TopicSpec):
    """A faust table's changelog, ``<namespace>-<app>-<table>-changelog``, compacted.

    Created before the worker starts: a worker that sees the topic appear only after its
    first metadata fetch believes it has 0 partitions and its agents crash-loop
    (faust PartitionsMismatch)."""

    def name(self, namespace: str = "kizuna") -> str:
        return f"{namespace}-{self.suffix}-changelog"


def changelog_spec(app: str, table: str, partitions: int) -> ChangelogSpec:
    return ChangelogSpec(f"{app}-{table}", "table key", "table row", _RAW, partitions, "compact")


def delete_topics(admin: AdminClient, names: list[str], timeout: float = 30.0) -> None:
    for future in admin.delete_topics(names, request_timeout=timeout).values():
        try:
            future.result(timeout=timeout)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise


def main(argv: list[str] | None = None) -> None:
    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m runtime.topics")
    parser.add_argument("command", choices=["ensure", "list"])
    parser.add_argument("--bootstrap", default=settings.kafka)
    parser.add_argument("--namespace", default=settings.namespace)
    parser.add_argument("--partitions", type=int, default=settings.partitions)
    args = parser.parse_args(argv)
    admin = create_admin(args.bootstrap)
    if args.command == "list":
        for spec in CATALOGUE:
            print(f"{spec.name(args.namespace):40} key={spec.key!r} value={spec.value}")
        return
    created = ensure_topics(admin, args.namespace, partitions=args.partitions)
    print(f"topics: {len(created)} created, {len(CATALOGUE) - len(created)} already there")


if __name__ == "__main__":
    main()
