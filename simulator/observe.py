"""Read the pipeline from outside: each worker's ``/metrics`` and the consumer groups' lag."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from runtime.kafka import create_admin, create_consumer

log = logging.getLogger(__name__)
Labels = tuple[tuple[str, str], ...]
WORKER_GROUPS = ("identity", "segmenter", "journey", "notifier")
# Each service's consumer groups (suffixes of ``<namespace>-``) and the topics (suffixes
# of ``<namespace>.``) each reads; None = all it committed. A group's offsets on topics it
# no longer reads (identity's and the notifier's faust groups before their batch
# consumers, runtime/consumer.py) are stale and must not count as lag.
GROUPS: dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    "identity": (("identity-resolve", None),),
    "segmenter": (("segmenter", None),),
    "journey": (("journey", None),),
    "notifier": (("notifier", ("customer.events",)), ("notifier-deliver", None)),
}


@dataclass(frozen=True)
class Scrape:
    """One worker's samples: name -> labels -> value (None: the worker did not answer)."""

    samples: dict[str, dict[Labels, float]] | None

    @property
    def up(self) -> bool:
        return self.samples is not None

    def total(self, name: str, **match: str) -> float | None:
        """The sum over the samples matching ``match``; None when the worker or metric is absent."""
        if self.samples is None or name not in self.samples:
            return None
        return sum(
            v
            for k, v in self.samples[name].items()
            if all(dict(k).get(a) == b for a, b in match.items())
        )

    def by(self, name: str, *labels: str) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for key, value in (self.samples or {}).get(name, {}).items():
            found = dict(key)
            group = tuple(found.get(label, "") for label in labels)
            out[group] = out.get(group, 0.0) + value
        return out


def parse(text: str) -> dict[str, dict[Labels, float]]:
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def scrape(client: httpx.Client, url: str) -> Scrape:
    try:
        answer = client.get(url, timeout=1.5)
        answer.raise_for_status()
    except httpx.HTTPError:
        return Scrape(None)
    return Scrape(parse(answer.text))


class Lag:
    """Committed offsets vs high watermarks of each service's consumer groups
    (``<namespace>-<service>``, and ``-resolve`` / ``-deliver`` for batch consumers).

    The offsets are read with an admin client and a consumer that never joins a group,
    so measuring does not disturb the workers.
    """

    def __init__(self, bootstrap: str, namespace: str) -> None:
        self.namespace = namespace
        self._admin = create_admin(bootstrap)
        self._consumer = create_consumer(bootstrap, f"{namespace}-console-{time.time_ns()}")

    def measure(self) -> dict[str, int | None]:
        return {name: self._service(name) for name in WORKER_GROUPS}

    def _service(self, name: str) -> int | None:
        """The lag of all of a service's consumer groups, on the topics each reads."""
        lags = [
            self._group(
                f"{self.namespace}-{group}",
                None if topics is None else {f"{self.namespace}.{t}" for t in topics},
            )
            for group, topics in GROUPS[name]
        ]
        known = [lag for lag in lags if lag is not None]
        return sum(known) if known else None

    def _group(self, group: str, topics: set[str] | None = None) -> int | None:
        try:
            request = [ConsumerGroupTopicPartitions(group)]
            found = self._admin.list_consumer_group_offsets(request, request_timeout=2)
            committed: list[TopicPartition] = found[group].result(timeout=3).topic_partitions
            read = [tp for tp in committed if topics is None or tp.topic in topics]
            return sum(self._behind(tp) for tp in read) if read else None
        except (KafkaException, TimeoutError, KeyError) as err:
            log.debug("lag of %s: %s", group, err)
            return None

    def _behind(self, tp: TopicPartition) -> int:
        if tp.offset < 0:  # nothing committed yet on this partition
            return 0
        _, high = self._consumer.get_watermark_offsets(tp, timeout=2)
        return max(0, int(high) - tp.offset)

    def close(self) -> None:
        self._consumer.close()
