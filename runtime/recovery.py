"""faust's table recovery, with one fix: the stream partitions are sought to their
committed offsets *before* they are resumed, not after.

faust 0.15.3 ends a recovery (``on_recovery_completed``, and ``_resume_streams`` for an
app without tables) by resuming the stream partitions and only then seeking them to the
committed offsets. After a changelog recovery the flow is already running, so the
fetcher reads those partitions from wherever they stood while the seek is on its way;
the records it had fetched when the seek lands are thrown away or handed out again,
and faust's read-offset bookkeeping (a record at or below the last one read is
dropped) can then skip one for good. Seen as an order missing from a profile after the
segmenter was killed and restarted under traffic (tests/faults/test_restarts.py: the
restarted worker read offsets 0..107, the seek landed, it went on at 109).

Here the partitions are still paused (faust pauses every assigned partition when the
assignment arrives) while the seek runs, so the first record a stream gets is the one
at its committed offset. The rest of each method is faust's, in faust's order.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery

if TYPE_CHECKING:
    from faust.app import App as _App


class SeekFirstRecovery(Recovery):
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        if self.app.consumer_generation_id != generation_id:
            self.log.warning(
                "Recovery rebalancing again app id %r param %r",
                self.app.consumer_generation_id,
                generation_id,
            )
            return
        await self._seek_then_resume()
        await self._ready(standbys_ready=not self.app.assignor.assigned_standbys())

    async def _resume_streams(self, generation_id: int = 0) -> None:
        await self.app.on_rebalance_complete.send()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._seek_then_resume()
        await self._ready(standbys_ready=True)

    async def _seek_then_resume(self) -> None:
        consumer = self.app.consumer
        assignment = consumer.assignment()
        if not assignment:
            self.log.info("Resuming streams with empty assignment")
            return
        self.log.info("Seek stream partitions to committed offsets (still paused).")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})

    async def _ready(self, *, standbys_ready: bool) -> None:
        self.completed.set()
        self.app.flow_control.resume()
        self.app.consumer.resume_flow()
        await cast("_App", self.app)._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if standbys_ready:
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")


class SeekFirstTableManager(TableManager):
    """faust's table manager with :class:`SeekFirstRecovery` (app setting ``TableManager``)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
