"""Process a faust stream in batches without ever acknowledging an unprocessed message.

faust's ``take_events`` acknowledges the buffered events when the batch body exits, even
when it exits by an exception or by cancellation at shutdown. So a batch runs in its own
task, shielded from cancellation: on shutdown it is given time to finish, and if it
cannot finish (or fails in a way its own retries did not absorb) the process stops hard
(fail-stop) before faust can commit, and the batch is read again after the restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

EX_TEMPFAIL = 75


def stop_unless_delivered(service: str, what: str) -> Callable[[Any], None]:
    """A done-callback for a faust send: Kafka refused (or the send was cancelled) ->
    fail-stop before an offset past the input that produced it can be committed."""

    def check(sent: Any) -> None:
        if sent.cancelled():
            fail_stop(service, f"{what} not delivered: cancelled")
        elif sent.exception() is not None:
            fail_stop(service, f"{what} not delivered: {sent.exception()!r}")

    return check


def fail_stop(service: str, why: str) -> None:
    """Exit at once, before faust can commit an offset past unfinished work."""
    log.critical(
        "stopping hard so the batch is redelivered", extra={"service": service, "why": why}
    )
    logging.shutdown()
    os._exit(EX_TEMPFAIL)


async def run_to_completion(work: Awaitable[None], *, service: str, drain_seconds: float) -> None:
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(asyncio.shield(task), drain_seconds)
        except BaseException as err:
            fail_stop(service, f"batch unfinished at shutdown: {err!r}")
        raise
    except Exception as err:
        fail_stop(service, f"batch failed: {err!r}")


async def process_batches(
    stream: Any,
    handle: Callable[[Sequence[Any]], Awaitable[None]],
    *,
    service: str,
    max_batch: int,
    within_seconds: float,
    drain_seconds: float = 30.0,
) -> None:
    """Feed ``handle`` lists of faust events; each list is acknowledged only after it ran."""
    async for events in stream.take_events(max_batch, within_seconds):
        await run_to_completion(handle(events), service=service, drain_seconds=drain_seconds)


async def retry_forever(
    attempt: Callable[[], Awaitable[object]],
    *,
    retryable: tuple[type[BaseException], ...],
    what: str,
    first_delay: float = 0.2,
    max_delay: float = 10.0,
) -> None:
    """Infrastructure outages block the partition (backpressure) instead of losing input."""
    delay = first_delay
    while True:
        try:
            await attempt()
            return
        except retryable as err:
            log.warning(
                "retrying after infrastructure error", extra={"what": what, "error": repr(err)}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


async def skip_tick_on_outage(
    tick: Callable[[], Awaitable[Any]],
    *,
    outage: tuple[type[BaseException], ...],
    what: str,
) -> None:
    """A timer's tick during an infrastructure outage is skipped, not fatal: faust stops
    the whole app when a timer raises, and the next tick retries anyway."""
    try:
        await tick()
    except outage as err:
        log.warning(
            "timer tick skipped: infrastructure down", extra={"what": what, "error": repr(err)}
        )
