"""Named code for ``engine_scenarios.py`` (watched as ``engine_lib:*``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any


def fail(message: str = "bad") -> None:
    raise ValueError(message)


def fail_inside() -> str:
    try:
        fail("inside")
    except ValueError:
        return "recovered inside"


def call_back(callback: Callable[[], Any]) -> Any:
    return callback()


def catch_callback(callback: Callable[[], Any]) -> str:
    try:
        callback()
    except ValueError:
        return "caught back in named code"
    return "no exception"


def numbers() -> Iterator[int]:
    yield 1
    raise LookupError("while iterating")


@contextlib.contextmanager
def managed() -> Iterator[str]:
    yield "managed"


def make_closure() -> Callable[[], None]:
    def closure() -> None:
        raise KeyError("from a closure")

    return closure


class Lazy:
    @property
    def missing(self) -> Any:
        return fail_attribute()


def fail_attribute() -> None:
    raise AttributeError("no such thing")


async def afail() -> None:
    await asyncio.sleep(0)
    raise ConnectionError("async")


async def sleeper() -> None:
    await asyncio.sleep(10)
