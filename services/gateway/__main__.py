"""``python -m services.gateway``: the HTTP collector, LINE webhook and /metrics, /health.

Listens on KIZUNA_WEB_HOST:KIZUNA_WEB_PORT (8080 unless set). With
KIZUNA_GATEWAY_PROCESSES=N, N processes share the port (SO_REUSEPORT); each serves its
own /metrics.
"""

from __future__ import annotations

import multiprocessing
import signal
from types import FrameType

from runtime.settings import load_settings
from services.gateway.app import serve
from services.gateway.settings import DEFAULT_PORT, GatewaySettings


def main() -> None:
    settings = load_settings()
    gateway = GatewaySettings()
    port = settings.web_port if "web_port" in settings.model_fields_set else DEFAULT_PORT
    if gateway.processes == 1:
        serve(settings, gateway, port)
        return
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=serve, args=(settings, gateway, port), name=f"gateway-{n}")
        for n in range(gateway.processes)
    ]
    for child in children:
        child.start()

    def stop(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.is_alive() and child.pid is not None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()


if __name__ == "__main__":
    main()
