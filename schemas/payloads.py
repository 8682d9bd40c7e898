"""Payloads of the raw events, one model per event kind."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from schemas.base import Frozen, Id, Name, Quantity, Yen
from schemas.channels import Channel, Purpose
from schemas.commerce import LineItem, Money, Product


class PageViewedPayload(Frozen):
    url: str = Field(max_length=2048)
    path: str | None = Field(default=None, max_length=2048)
    title: str | None = Field(default=None, max_length=512)
    referrer: str | None = Field(default=None, max_length=2048)


class ProductViewedPayload(Frozen):
    product: Product


class CartChangedPayload(Frozen):
    cart_id: Id
    product: Product
    quantity: Quantity = 1


class CartPayload(Frozen):
    cart_id: Id
    items: tuple[LineItem, ...] = Field(default=(), max_length=500)
    total: Yen = 0


class OrderCompletedPayload(Frozen):
    order_id: Id
    cart_id: Id | None = None
    mall: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")] | None = Field(
        default=None, description="Set when the order came from a mall shop (rakuten, …)"
    )
    items: tuple[LineItem, ...] = Field(min_length=1, max_length=500)
    money: Money
    coupon: str | None = Field(default=None, max_length=128)


class OrderCancelledPayload(Frozen):
    order_id: Id
    reason: str | None = Field(default=None, max_length=512)


class OrderRefundedPayload(Frozen):
    order_id: Id
    amount: Yen = Field(description="Refunded amount; the order's net amount drops by this")
    items: tuple[LineItem, ...] = Field(default=(), max_length=500)


class PosPurchasedPayload(Frozen):
    store_id: Id
    receipt_id: Id
    register_id: Id | None = None
    member_card: str | None = Field(default=None, max_length=64)
    items: tuple[LineItem, ...] = Field(min_length=1, max_length=500)
    money: Money


class AppOpenedPayload(Frozen):
    platform: Literal["ios", "android", "web"]
    push_token: str | None = Field(default=None, max_length=4096)
    push_enabled: bool | None = None


class LocationReportedPayload(Frozen):
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)
    accuracy_m: float = Field(ge=0, le=100_000, allow_inf_nan=False)


class LinePayload(Frozen):
    channel_id: Id = Field(description="LINE channel (official account) that saw the event")


class LineAccountLinkedPayload(LinePayload):
    result: Literal["ok", "failed"]
    nonce: str | None = Field(default=None, max_length=256)


class Traits(Frozen):
    """Known profile traits; anything else an SDK sends goes in ``custom``."""

    name: Name | None = None
    name_kana: Name | None = None
    birthday: date | None = None
    gender: Literal["female", "male", "other", "unknown"] | None = None
    prefecture: str | None = Field(default=None, max_length=16)
    custom: dict[str, Any] = Field(default_factory=dict)


class IdentifiedPayload(Frozen):
    traits: Traits = Traits()


class ConsentPayload(Frozen):
    channel: Channel
    purpose: Purpose = Purpose.MARKETING
    method: Literal["web_form", "app", "pos", "line", "email_link", "one_click", "import", "crm"]
    shown_text: str | None = Field(
        default=None,
        max_length=10_000,
        description="What the person saw when consenting (特定電子メール法 record keeping)",
    )
    wording_version: str | None = Field(default=None, max_length=64)


class ProfileUpdatedPayload(Frozen):
    birthday: date | None = None
    preferred_channel: Channel | None = None
    timezone: str | None = Field(default=None, max_length=64)
    name: Name | None = None

    @model_validator(mode="after")
    def _something_changed(self) -> ProfileUpdatedPayload:
        if not self.model_fields_set:
            raise ValueError("profile update changes nothing")
        return self


class CustomTrackedPayload(Frozen):
    name: Name = Field(description="The event name as the SDK sent it")
    properties: dict[str, Any] = Field(default_factory=dict)
