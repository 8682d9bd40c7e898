"""Products, line items and money as carts, orders and receipts carry them."""

from __future__ import annotations

from pydantic import Field, model_validator

from schemas.base import Currency, Frozen, Id, Name, Quantity, Yen


class Product(Frozen):
    product_id: Id
    sku: Id | None = None
    name: Name | None = None
    category: Name | None = None
    brand: Name | None = None
    price: Yen | None = Field(default=None, description="Unit price, tax included")
    url: str | None = Field(default=None, max_length=2048)
    image_url: str | None = Field(default=None, max_length=2048)


class LineItem(Frozen):
    product: Product
    quantity: Quantity
    unit_price: Yen
    amount: Yen = Field(description="quantity × unit_price after line discounts")

    @model_validator(mode="after")
    def _amount_not_above_list(self) -> LineItem:
        if self.amount > self.quantity * self.unit_price:
            raise ValueError("amount exceeds quantity × unit_price")
        return self


class Money(Frozen):
    """Totals of an order or receipt; ``total`` is what the customer paid."""

    subtotal: Yen
    discount: Yen = 0
    shipping: Yen = 0
    tax: Yen = Field(default=0, description="Included in subtotal for tax-inclusive prices")
    total: Yen
    currency: Currency = "JPY"
