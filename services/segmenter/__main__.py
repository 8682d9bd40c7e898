"""``python -m services.segmenter``: the segmenter worker (web port 6067 in compose)."""

from __future__ import annotations

from runtime.app import run_worker
from runtime.kafka import create_admin
from runtime.settings import load_settings
from runtime.topics import changelog_spec, ensure_topics
from schemas.topics import CUSTOMER_EVENTS
from services.segmenter.app import SERVICE, TABLE, build, control_spec
from services.segmenter.settings import load_segmenter_settings


def main() -> None:
    settings = load_settings()
    partitions = settings.partitions or CUSTOMER_EVENTS.partitions
    specs = [control_spec(partitions), changelog_spec(SERVICE, TABLE, partitions)]
    ensure_topics(create_admin(settings.kafka), settings.namespace, specs=specs)
    app, _ = build(settings, load_segmenter_settings())
    run_worker(app, settings, SERVICE)


if __name__ == "__main__":
    main()
