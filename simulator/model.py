"""The shop as one deterministic stream of emissions: ``Shop(seed, ...).emissions()``.

The simulated clock advances by ``step`` per emission (``speed / rate`` simulated seconds
at run time), so the stream depends on the seed alone, never on the wall clock. Sessions
start on the shop's clock, weighted by the hour of day in Japan (stores open 10–21h,
phones in the evening), and interleave like concurrent visitors.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import accumulate

from simulator.messages import Emission
from simulator.offline import line_session, mall_order, preferences, store_visit
from simulator.population import Person, population
from simulator.sessions import World, app_session, jst_hour, web_session

Session = Callable[[World, Person, datetime], Iterator[Emission]]
KINDS: dict[str, Session] = {
    "web": web_session,
    "app": app_session,
    "store": store_visit,
    "mall": mall_order,
    "line": line_session,
    "preferences": preferences,
}


def kind_weights(hour: int) -> dict[str, float]:
    """Relative session starts by JST hour: stores only when open, apps peak at night."""
    evening = 19 <= hour <= 23
    night = hour < 7
    return {
        "web": 45.0 if not night else 25.0,
        "app": 30.0 if evening else 18.0,
        "store": 14.0 if 10 <= hour < 21 else 0.0,
        "mall": 6.0,
        "line": 5.0,
        "preferences": 2.0,
    }


class Shop:
    def __init__(
        self,
        seed: int,
        *,
        start: datetime,
        step: timedelta,
        customers: int = 2_000,
        concurrency: int = 32,
        run_id: str = "sim",
        line_provider: str = "line",
    ) -> None:
        rng = random.Random(seed)
        self.people = population(rng, customers)
        self.world = World(rng, run_id, line_provider)
        self.now = start
        self.step = step
        self.concurrency = concurrency
        self._cum = list(accumulate(p.activity for p in self.people))
        self._active: list[Iterator[Emission]] = []
        self.started: dict[str, int] = dict.fromkeys(KINDS, 0)

    def emissions(self) -> Iterator[Emission]:
        rng = self.world.rng
        while True:
            while len(self._active) < self.concurrency:
                self._active.append(self._start())
            index = rng.randrange(len(self._active))
            emission = next(self._active[index], None)
            if emission is None:
                self._active.pop(index)
                continue
            self.now += self.step
            yield emission

    def _start(self) -> Iterator[Emission]:
        rng = self.world.rng
        weights = kind_weights(jst_hour(self.now))
        kind = rng.choices(list(weights), weights=list(weights.values()))[0]
        person = rng.choices(self.people, cum_weights=self._cum)[0]
        self.started[kind] += 1
        return KINDS[kind](self.world, person, self.now)
