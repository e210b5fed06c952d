"""Targets for tests/test_instrumentation_command.py: one function of every kind.

Imported by ``kinds_app.py`` after start-up, i.e. after the instrumentor ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator


def plain(x: int) -> int:
    return 10 // x


async def coro(x: int) -> int:
    await asyncio.sleep(0)
    raise ArithmeticError(f"cannot scale by {x}")


def gen(n: int) -> Iterator[int]:
    yield n
    raise LookupError(f"row {n + 1} vanished")


async def agen(n: int) -> AsyncIterator[int]:
    yield n
    raise EOFError("stream ended early")


def charge(amount: int) -> None:
    raise NotImplementedError(f"cannot charge {amount} yet")


def fetch_rate(currency: str) -> float:
    """Not a target: its TimeoutError is swallowed and logged by the app."""
    raise TimeoutError(f"rates for {currency} timed out")


class Store:
    def method(self, key: str) -> str:
        return {"a": "1"}[key]

    @staticmethod
    def static(text: str) -> int:
        return int(text)

    @classmethod
    def klass(cls, host: str) -> None:
        raise ConnectionError(f"{cls.__name__}: {host} refused the connection")


class Cart:
    def checkout(self, items: int) -> int:
        if items > 1000:
            raise OverflowError(f"{items} items is too many")
        return items
