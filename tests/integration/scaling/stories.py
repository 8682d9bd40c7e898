"""The event sets both deployments receive: built once, so event ids (and with them
journey instance and notification ids) are the same in the one-worker and the
two-worker run.

- identity: a messy, shuffled shop population on the raw topics (cookies, logins,
  member cards, mall ids, shared LINE accounts), people spread over all partitions;
- segmenter: ~50 buyers with a year of web orders, store receipts, cancels and refunds,
  a few merged customers, then the clock moved 200 days on;
- journey: ~50 customers in six stories (cart left, cart bought online, cart paid in a
  store, store visit with the app, cart with email consent only, product browsed), a
  few merged mid-journey, on the journey's simulated clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from schemas.channels import Channel
from schemas.events import EventEnvelope, RawEvent
from services.journey.adapters.partitioning import partition_function
from tests.integration.identity.population import population
from tests.unit.journey import builders as jb
from tests.unit.segmenter import builders as sb

PARTITIONS = 4
NEAR_SHIBUYA = (35.6600, 139.7010)


def customers_on_every_partition(prefix: str, per_partition: int = 1) -> list[str]:
    """Customer ids chosen so that each partition owns ``per_partition`` of them."""
    choose = partition_function(PARTITIONS)
    found: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for n in range(10_000):
        candidate = f"{prefix}-{n}"
        owned = found[choose(candidate)]
        if len(owned) < per_partition:
            owned.append(candidate)
        if all(len(ids) == per_partition for ids in found.values()):
            break
    return [c for p in range(PARTITIONS) for c in found[p]]


def different_partitions(pairs_from: list[str], count: int) -> list[tuple[str, str]]:
    """``count`` (survivor, absorbed) pairs whose rows live on different partitions, so a
    merge hands state over from one worker to the other in the two-worker run."""
    choose = partition_function(PARTITIONS)
    pairs: list[tuple[str, str]] = []
    pool = list(pairs_from)
    while pool and len(pairs) < count:
        absorbed = pool.pop(0)
        survivor = next((c for c in pool if choose(c) != choose(absorbed)), None)
        if survivor is None:
            break
        pool.remove(survivor)
        pairs.append((survivor, absorbed))
    return pairs


# -- identity ---------------------------------------------------------------------


def identity_events() -> list[EventEnvelope]:
    return population(people=50, events=400, seed=23)


# -- segmenter --------------------------------------------------------------------


@dataclass(frozen=True)
class SegmenterStory:
    now: datetime
    events: dict[str, list[RawEvent]]
    merges: list[tuple[str, str]]  # (survivor, absorbed)
    after_merge: dict[str, list[RawEvent]]  # sent to absorbed ids: forwarded to survivors
    later: datetime  # the clock is pinned here at the end: the sweep ages everyone

    @property
    def customers(self) -> list[str]:
        return list(self.events)


def segmenter_story(customers: int = 48) -> SegmenterStory:
    # midday in Tokyo, and the workers' clocks are pinned here (run_segmenter) so that
    # "today" does not follow the wall clock past midnight while the story runs
    now = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    ids = [f"buyer-{n}" for n in range(customers)]
    events: dict[str, list[RawEvent]] = {}
    for n, customer in enumerate(ids):
        days = [5 + (n * 37 + k * 53) % 340 for k in range(1 + n % 6)]
        history: list[RawEvent] = []
        for k, ago in enumerate(sorted(days, reverse=True)):
            at = now - timedelta(days=ago, hours=k)
            total = 1_500 + (n * 1_300 + k * 700) % 40_000
            if (n + k) % 3 == 0:
                history.append(sb.receipt("umeda", f"R-{customer}-{k}", total, at))
            else:
                history.append(sb.order(f"O-{customer}-{k}", total, at))
        if n % 7 == 3:
            history.append(sb.cancel(f"O-{customer}-0", now - timedelta(days=2)))
        if n % 11 == 5:
            history.append(sb.refund(f"O-{customer}-1", 500, now - timedelta(days=1)))
        history.append(sb.page(now - timedelta(hours=n % 5)))
        events[customer] = history
    merges = different_partitions(ids[::3], 5)
    after_merge: dict[str, list[RawEvent]] = {
        absorbed: [sb.receipt("ginza", f"R-late-{absorbed}", 2_200, now)] for _, absorbed in merges
    }
    return SegmenterStory(now, events, merges, after_merge, now + timedelta(days=200))


# -- journey ----------------------------------------------------------------------

# a Monday 10:00 in Tokyo, years ahead: the workers' clocks follow the events there
BASE = jb.jst(2030, 6, 3, 10, 0)
CLOCK_STEPS = (
    BASE + jb.HOUR + jb.MINUTE,  # reminder 1
    BASE + jb.DAY + jb.MINUTE,  # reminder 2
    BASE + 3 * jb.DAY + jb.MINUTE,  # reminder 3
    BASE + 7 * jb.DAY + jb.MINUTE,  # post-purchase follow-up (day 7, 10:00)
    BASE + 14 * jb.DAY + 2 * jb.HOUR + jb.MINUTE,  # F2 nudge (day 14, 12:00)
)
MERGE_AFTER_STEP = 0  # merges arrive between reminder 1 and reminder 2


@dataclass(frozen=True)
class JourneyStory:
    events: dict[str, list[RawEvent]]
    merges: list[tuple[str, str]]  # (survivor, absorbed)
    heartbeats: list[list[tuple[str, RawEvent]]] = field(default_factory=list)

    @property
    def customers(self) -> list[str]:
        return list(self.events)


def _journey_of(story: int, n: int) -> list[RawEvent]:
    """Every event lies within a few minutes of BASE (plus earlier follows/consents), so
    no timer falls due before the first clock step, whatever the ingest order."""
    at = BASE + (n % 4) * jb.MINUTE
    cart = f"cart-{n}"
    if story == 0:  # leaves a cart: three LINE reminders
        return [jb.followed(BASE - jb.DAY), jb.added(at, cart_id=cart)]
    if story == 1:  # buys the cart online: thanks, follow-up, F2 nudge; no reminder
        return [
            jb.followed(BASE - jb.DAY),
            jb.added(at, cart_id=cart),
            jb.order(at + 2 * jb.MINUTE, order_id=f"o-{n}", cart_id=cart),
        ]
    if story == 2:  # pays in a store with the member card: no reminder
        return [
            jb.followed(BASE - jb.DAY),
            jb.added(at, cart_id=cart),
            jb.receipt(at + 3 * jb.MINUTE, receipt_id=f"r-{n}"),
        ]
    if story == 3:  # walks into the Shibuya store with the app open: one push
        return [
            jb.consent(BASE - jb.DAY, Channel.PUSH),
            jb.ping(at, *NEAR_SHIBUYA),
            jb.ping(at + 3 * jb.MINUTE, *NEAR_SHIBUYA),
        ]
    if story == 4:  # email consent only: the reminders go by email
        return [jb.consent(BASE - jb.DAY, Channel.EMAIL), jb.added(at, cart_id=cart)]
    return [jb.followed(BASE - jb.DAY), jb.viewed(at)]  # browses, buys nothing


def journey_story(customers: int = 48) -> JourneyStory:
    ids = [f"shopper-{n}" for n in range(customers)]
    events = {c: _journey_of(n % 6, n) for n, c in enumerate(ids)}
    cart_leavers = [c for n, c in enumerate(ids) if n % 6 in (0, 4)]
    merges = different_partitions(cart_leavers, 4)
    clocks = customers_on_every_partition("clock")
    heartbeats: list[list[tuple[str, RawEvent]]] = [
        [(c, jb.page(step)) for c in clocks] for step in CLOCK_STEPS
    ]
    return JourneyStory(events, merges, heartbeats)
