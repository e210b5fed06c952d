"""Stock levels, kept in memory."""

from __future__ import annotations


class OutOfStock(Exception):
    """Fewer items left than ordered."""


class Inventory:
    """Stock per SKU; :meth:`reserve` takes items out of it."""

    def __init__(self) -> None:
        self._stock = {"KB-87": 12, "MS-11": 40}

    def reserve(self, sku: str, qty: int) -> None:
        """Take ``qty`` items of ``sku``; KeyError for an unknown SKU, OutOfStock if short."""
        available = self._stock[sku]
        if available < qty:
            raise OutOfStock(f"{sku}: {available} left, {qty} ordered")
        self._stock[sku] = available - qty

    def level(self, sku: str) -> int:
        return self._stock.get(sku, 0)
