"""Halt keys: the attributes a halt is for, and which work a halt stops.

A halt stops work for a *key* — a mapping of attributes such as
``{"strategy": "VWAP", "symbol": "AAPL"}``. A halt covers every key that contains all
of its items: a halt on ``{"strategy": "VWAP"}`` stops VWAP for every symbol, and a
halt on the empty key stops everything. The SDK's trackers and halt guards and the
processor's halt engine decide with the same functions (through
:mod:`faultlens.shared`), so a halt means the same on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping

#: What a key attribute's value can be.
KeyValue = str | bool | int | float
#: A normalized key: its items sorted by name.
Key = tuple[tuple[str, KeyValue], ...]


def make_key(key: Mapping[str, KeyValue] | None) -> Key:
    """Normalize ``key``; raise ``TypeError`` for names that are not non-empty strings or
    values that are not str, bool, int or float."""
    if not key:
        return ()
    if not isinstance(key, Mapping):
        raise TypeError(f"faultlens: a key is a mapping of attributes, got {type(key).__name__}")
    for name, value in key.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"faultlens: key attribute names must be non-empty strings: {name!r}")
        if not isinstance(value, (str, bool, int, float)):
            raise TypeError(
                f"faultlens: key attribute {name!r} must be str, bool, int or float, "
                f"got {type(value).__name__}"
            )
    return tuple(sorted(key.items()))


def covers(halt_key: Key, key: Key) -> bool:
    """True if a halt on ``halt_key`` stops work for ``key``."""
    if not halt_key:
        return True
    items = set(key)
    return all(item in items for item in halt_key)


def format_key(key: Mapping[str, object]) -> str:
    """``strategy=VWAP,symbol=AAPL`` (sorted), or ``*`` for the empty key."""
    if not key:
        return "*"
    return ",".join(f"{name}={key[name]!s}" for name in sorted(key))
