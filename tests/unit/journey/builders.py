"""Events and a context for journey stories, on a controllable clock (epoch seconds)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from schemas.channels import Channel, Purpose
from schemas.commerce import LineItem, Money, Product
from schemas.events import (
    AppOpened,
    ConsentGranted,
    ConsentRevoked,
    LineFollowed,
    LocationReported,
    OrderCompleted,
    PageViewed,
    PosPurchased,
    ProductAdded,
    ProductViewed,
    ProfileUpdated,
    RawEvent,
    Source,
)
from schemas.identifiers import Identifiers
from schemas.journeys import JourneyConverted
from schemas.notifications import SendNotification
from schemas.payloads import (
    AppOpenedPayload,
    CartChangedPayload,
    ConsentPayload,
    LinePayload,
    LocationReportedPayload,
    OrderCompletedPayload,
    PageViewedPayload,
    PosPurchasedPayload,
    ProductViewedPayload,
    ProfileUpdatedPayload,
)
from services.journey.adapters.scenarios import load_scenarios, load_stores
from services.journey.domain.catalogue import Catalogue, Context
from services.journey.domain.policy import Policy
from services.journey.domain.scenario import Scenario
from services.journey.processor import EventClock  # noqa: F401  (the tests' clock)

JST = ZoneInfo("Asia/Tokyo")
SHIPPED = Path(__file__).resolve().parents[3] / "services" / "journey"
MINUTE, HOUR, DAY = 60.0, 3600.0, 86_400.0
_ids = itertools.count(1)


def jst(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=JST).timestamp()


T0 = jst(2026, 3, 2, 12, 0)  # a Monday noon in Tokyo


def _envelope(at: float, source: Source, event_id: str | None) -> dict[str, Any]:
    when = datetime.fromtimestamp(at, UTC)
    return {
        "event_id": event_id or f"e{next(_ids)}",
        "occurred_at": when,
        "received_at": when,
        "source": source,
        "identifiers": Identifiers(member_id="m-1"),
    }


def product(price: int = 3_000, product_id: str = "tea-001") -> Product:
    return Product(product_id=product_id, name="抹茶", price=price)


def added(at: float, cart_id: str = "cart-1", price: int = 3_000, **kw: Any) -> ProductAdded:
    payload = CartChangedPayload(cart_id=cart_id, product=product(price), quantity=1)
    return ProductAdded(**_envelope(at, Source.WEB, kw.get("event_id")), payload=payload)


def viewed(at: float) -> ProductViewed:
    return ProductViewed(
        **_envelope(at, Source.WEB, None), payload=ProductViewedPayload(product=product())
    )


def page(at: float) -> PageViewed:
    return PageViewed(
        **_envelope(at, Source.WEB, None), payload=PageViewedPayload(url="https://shop.example/")
    )


def _items(total: int) -> tuple[LineItem, ...]:
    return (LineItem(product=product(total), quantity=1, unit_price=total, amount=total),)


def order(
    at: float, order_id: str = "o-1", cart_id: str | None = None, total: int = 3_000, **kw: Any
) -> OrderCompleted:
    payload = OrderCompletedPayload(
        order_id=order_id,
        cart_id=cart_id,
        items=_items(total),
        money=Money(subtotal=total, total=total),
    )
    return OrderCompleted(**_envelope(at, Source.WEB, kw.get("event_id")), payload=payload)


def receipt(
    at: float, receipt_id: str = "r-1", total: int = 5_000, store_id: str = "shibuya"
) -> PosPurchased:
    payload = PosPurchasedPayload(
        store_id=store_id,
        receipt_id=receipt_id,
        items=_items(total),
        money=Money(subtotal=total, total=total),
    )
    return PosPurchased(**_envelope(at, Source.POS, None), payload=payload)


def consent(at: float, channel: Channel, granted: bool = True) -> RawEvent:
    payload = ConsentPayload(channel=channel, purpose=Purpose.MARKETING, method="web_form")
    kind = ConsentGranted if granted else ConsentRevoked
    return kind(**_envelope(at, Source.WEB, None), payload=payload)


def followed(at: float) -> LineFollowed:
    return LineFollowed(**_envelope(at, Source.LINE, None), payload=LinePayload(channel_id="ch-1"))


def opened(at: float) -> AppOpened:
    return AppOpened(**_envelope(at, Source.APP, None), payload=AppOpenedPayload(platform="ios"))


def ping(at: float, lat: float, lon: float, accuracy_m: float = 20.0) -> LocationReported:
    payload = LocationReportedPayload(latitude=lat, longitude=lon, accuracy_m=accuracy_m)
    return LocationReported(**_envelope(at, Source.APP, None), payload=payload)


def birthday(at: float, born: date, timezone: str | None = None) -> ProfileUpdated:
    payload = ProfileUpdatedPayload(birthday=born, timezone=timezone)
    return ProfileUpdated(**_envelope(at, Source.WEB, None), payload=payload)


def shipped() -> dict[str, Scenario]:
    return {s.id: s for s in load_scenarios(SHIPPED / "scenarios")}


def context_factory(*scenarios: Scenario, policy: Policy | None = None) -> Context:
    stores = load_stores(SHIPPED / "stores.yaml")
    return Context.of(Catalogue.of(list(scenarios)), policy or Policy(), stores)


def scenario_factory(**overrides: Any) -> Scenario:
    """A small scenario; ``overrides`` replace top-level fields of the document."""
    document: dict[str, Any] = {
        "id": "test_journey",
        "version": 1,
        "name": "test",
        "trigger": {"events": ["product_added"]},
        "quiet_hours": None,
        "steps": [
            {"id": "wait", "wait": "1h"},
            {"id": "send", "send": {"template": "t", "channels": ["line"]}},
        ],
    }
    document.update(overrides)
    return Scenario.model_validate(document)


class Story:
    """One customer's journey state driven by events and ticks on a controllable clock."""

    def __init__(self, ctx: Context, customer_id: str = "c-1") -> None:
        from services.journey.domain.state import CustomerState

        self.ctx, self.customer_id = ctx, customer_id
        self.state: CustomerState | None = None
        self.outputs: list[Any] = []

    def event(self, event: RawEvent, now: float | None = None) -> list[Any]:
        from services.journey.domain import engine

        at = event.occurred_at.timestamp() if now is None else now
        result = engine.on_event(self.state, self.customer_id, event, at, self.ctx)
        return self._keep(result)

    def tick(self, now: float) -> list[Any]:
        from services.journey.domain import engine

        return self._keep(engine.on_tick(self.state, self.customer_id, now, self.ctx))

    def run_until(self, until: float) -> list[Any]:
        """Tick whenever something is due, up to ``until`` (as the worker's sweep does)."""
        got: list[Any] = []
        while (
            self.state is not None and (due := self.state.next_due()) is not None and due <= until
        ):
            got += self.tick(due)
        return got

    def _keep(self, result: Any) -> list[Any]:
        self.state = result.state
        self.outputs += result.outputs
        return list(result.outputs)

    def sent(self) -> list[Any]:
        from services.journey.domain.outputs import Requested

        return [o.request for o in self.outputs if isinstance(o, Requested)]

    def skipped(self) -> list[str]:
        from services.journey.domain.outputs import Skipped

        return [o.reason for o in self.outputs if isinstance(o, Skipped)]

    def opted_in(self, *channels: Channel, at: float | None = None) -> Story:
        for channel in channels:
            self.event(consent((at or T0) - DAY, channel))
        return self


# -- fakes for the processor (the worker's wiring) -----------------------------------


class Recorder:
    def __init__(self) -> None:
        self.requests: list[SendNotification] = []
        self.sent: list[tuple[int, str, BaseModel]] = []

    async def request(self, request: SendNotification) -> Awaitable[Any]:
        self.requests.append(request)
        return delivered()

    async def conversion(self, conversion: JourneyConverted) -> Awaitable[Any]:
        return delivered()

    async def control(
        self, partition: int, key: str, message: BaseModel, *, wait: bool = False
    ) -> None:
        self.sent.append((partition, key, message))


def delivered() -> asyncio.Future[None]:
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class NoReports:
    def stage(self, customer_id: str, output: Any) -> None: ...
    def pending(self) -> int:
        return 0

    async def flush(self) -> int:
        return 0
