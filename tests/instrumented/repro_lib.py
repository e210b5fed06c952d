"""Targets of ``repro_app.py``: one function per item of issue 13 that real libraries tripped over.

Named as ``repro_lib:*,repro_lib:Box.*,repro_lib:Range.__contains__,repro_lib:Range.index``.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any


# item 1: the kind of wrapper -------------------------------------------------
@contextlib.contextmanager
def opened(name: str) -> Iterator[str]:
    yield f"<{name}>"


@contextlib.asynccontextmanager
async def aopened(name: str) -> AsyncIterator[str]:
    yield f"<{name}>"


def listify(func: Callable[..., Iterator[Any]]) -> Callable[..., list[Any]]:
    @functools.wraps(func)
    def collect(*args: Any) -> list[Any]:
        return list(func(*args))

    return collect


@listify
def squares(n: int) -> Iterator[int]:
    for i in range(n):
        yield i * i


# item 2: identity ------------------------------------------------------------
def frozen_setattr(self: object, name: str, value: object) -> None:
    raise AttributeError(f"{type(self).__name__} is frozen")


def freeze(cls: type) -> type:
    """What attrs does: install the frozen ``__setattr__`` and recognise it later by identity."""
    cls.__setattr__ = frozen_setattr  # type: ignore[assignment,method-assign]
    return cls


def is_frozen(cls: type) -> bool:
    return cls.__setattr__ is frozen_setattr  # type: ignore[comparison-overlap]


class Box:
    def method(self, x: int) -> int:
        return x + 1

    def fail(self) -> None:
        raise KeyError("box")


# item 3: caller frames -------------------------------------------------------
def make_class(name: str) -> type:
    """Names the class after the caller's module, as attrs' make_class and namedtuple do."""
    return type(name, (), {"__module__": sys._getframe(1).f_globals.get("__name__", "__main__")})


def deprecated() -> int:
    warnings.warn("deprecated() is deprecated", DeprecationWarning, stacklevel=2)
    return 1


def caller_name() -> str:
    return sys._getframe(1).f_code.co_name


def explode() -> None:
    raise RuntimeError("explode")


# item 4: pickling and copying ------------------------------------------------
def square(x: int) -> int:
    return x * x


#: a registry filled while the module body runs (jinja2's filter table, a dispatch dict)
REGISTRY = {"square": square}


# item 6: raised and caught inside named code ----------------------------------
class Range:
    def __init__(self, stop: int) -> None:
        self.stop = stop

    def index(self, value: int) -> int:
        if not 0 <= value < self.stop:
            raise ValueError(f"{value} is not in range")
        return value

    def __contains__(self, value: int) -> bool:
        try:
            self.index(value)
        except ValueError:
            return False
        return True


def find(table: dict[str, int], key: str) -> int:
    return table[key]


def lookup(table: dict[str, int], key: str) -> int:
    try:
        return find(table, key)
    except KeyError:
        return -1


# item 8: failures and their fate ---------------------------------------------
def charge(amount: int) -> int:
    if amount > 100:
        raise ConnectionError("payment service unreachable")
    return amount


def crash() -> None:
    raise ZeroDivisionError("worker crashed")
