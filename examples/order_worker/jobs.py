"""What the worker does with one order: reserve stock, price it, write a receipt."""

from __future__ import annotations

import logging
from typing import TypedDict

from order_worker import pricing
from order_worker.inventory import Inventory

log = logging.getLogger("order_worker.jobs")

UNIT_PRICE = 24.90


class Order(TypedDict):
    id: str
    sku: str
    qty: int
    currency: str


def process(order: Order, inventory: Inventory) -> str:
    """Reserve, price and confirm one order; raises if the order cannot be fulfilled."""
    inventory.reserve(order["sku"], order["qty"])
    total = price(order)
    return f"{order['id']}: {order['qty']} x {order['sku']} = {total:.2f} {order['currency']}"


def price(order: Order) -> float:
    """The order's total in its currency; falls back to a cached rate if pricing is down."""
    try:
        rate = pricing.exchange_rate(order["currency"])
    except TimeoutError:
        # The silent failure: caught, logged, and the order goes on with a stale rate.
        log.exception("pricing timed out for %s; using the cached rate", order["currency"])
        rate = pricing.CACHED_RATES[order["currency"]]
    return round(order["qty"] * UNIT_PRICE * rate, 2)
