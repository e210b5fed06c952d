"""The domain code the test apps call: one defect that escapes, one the app handles."""

from __future__ import annotations


class PaymentDeclinedError(Exception):
    """The payment provider refused the charge."""


class OutOfStockError(Exception):
    """Nothing left to reserve."""


def charge(order: int) -> None:
    raise PaymentDeclinedError(f"card declined for order {order}")


def reserve(sku: str) -> None:
    raise OutOfStockError(f"no {sku} left")
