"""The domain code the test apps call: one defect that escapes, one the app handles."""

from __future__ import annotations

import logging

log = logging.getLogger("shop.stock")


class PaymentDeclinedError(Exception):
    """The payment provider refused the charge."""


class OutOfStockError(Exception):
    """Nothing left to reserve."""


def charge(order: int) -> None:
    raise PaymentDeclinedError(f"card declined for order {order}")


def reserve(sku: str) -> None:
    raise OutOfStockError(f"no {sku} left")


def reserve_or_backorder(sku: str) -> str:
    """A failure the application catches, logs and answers for (200)."""
    try:
        reserve(sku)
    except OutOfStockError:
        log.exception("reservation failed, answering with a backorder")
        return "backorder"
    return "reserved"
