"""The console's search box: ``key:value`` terms plus free text → a ``GroupFilter``.

::

    category:timeout service:orders handled:true card declined

========================  ==========================================================
term                      selects groups …
========================  ==========================================================
``status:S`` (``is:``)    with status S (open, regressed, dismissed, resolved)
``category:C``            of category C (``cat:``)
``severity:S``            of severity S (``sev:``); ``severity:>=high`` also takes higher
``service:S``             with occurrences from service S (``svc:``)
``type:T``                whose ``exception.type`` is T
``tag:T``                 carrying tag T
``handled:true``          with at least one handled (silent) occurrence; ``false``: with
                          at least one that escaped
``seen:2h``               last seen within 2 hours (``30m``, ``7d``, ``1w``)
``new:24h``               first seen within 24 hours (``first_seen:``)
``regressed:24h``         regressed within 24 hours
anything else             whose fingerprint, exception type or message contains the
                          remaining words, as one phrase (ASCII case-insensitive)
========================  ==========================================================

A key given twice matches either value (``category:io category:timeout``). Values
with spaces are quoted (``type:"my error"``). A word with a colon that is not one of
the keys above (``KeyError:``) is free text, so pasted messages search as typed. A
known key with a bad value is a :class:`SearchError` naming it.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Final

from faultlens import semconv

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.groups.model import STATUSES

_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_UNIT_SECONDS: Final = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_KEYS: Final = {
    "status": "status",
    "is": "status",
    "category": "category",
    "cat": "category",
    "severity": "severity",
    "sev": "severity",
    "service": "service",
    "svc": "service",
    "type": "type",
    "tag": "tag",
    "handled": "handled",
    "seen": "seen",
    "since": "seen",
    "new": "new",
    "first_seen": "new",
    "regressed": "regressed",
}
_TRUE: Final = {"true", "yes", "1"}
_FALSE: Final = {"false", "no", "0"}
#: The tabs of the list, and the statuses each shows.
TABS: Final = {
    "open": ("open", "regressed"),
    "regressed": ("regressed",),
    "dismissed": ("dismissed",),
    "resolved": ("resolved",),
    "all": (),
}


class SearchError(ValueError):
    """A search term the console cannot use (the message names it)."""


@dataclass
class Search:
    """A parsed search (see the module docstring)."""

    statuses: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    handled: int = control_pb2.HANDLED_ANY
    seen_since: int = 0
    first_seen_since: int = 0
    regressed_since: int = 0
    text: str = ""

    def group_filter(self, tab: str = "all") -> Any:
        """The ``GroupFilter``; statuses named in the search win over the tab's."""
        statuses = self.statuses or list(TABS.get(tab, ()))
        return control_pb2.GroupFilter(
            statuses=statuses,
            categories=self.categories,
            severities=self.severities,
            services=self.services,
            exception_types=self.types,
            tags=self.tags,
            handled=self.handled,
            since_unix_nano=self.seen_since,
            first_seen_since_unix_nano=self.first_seen_since,
            regressed_since_unix_nano=self.regressed_since,
            text=self.text,
        )


def parse_search(text: str, *, now: float | None = None) -> Search:
    """Parse the search box (see the module docstring); :class:`SearchError` when a known
    key has a bad value or quotes do not close."""
    try:
        words = shlex.split(text, posix=True)
    except ValueError as exc:
        raise SearchError(f"the search has an unclosed quote ({exc})") from None
    search = Search()
    free: list[str] = []
    clock = time.time() if now is None else now
    for word in words:
        key, sep, value = word.partition(":")
        kind = _KEYS.get(key.lower()) if sep and value else None
        if kind is None:
            free.append(word)
            continue
        _apply(search, kind, key, value, clock)
    search.text = " ".join(free)
    if len(search.text) > 256:
        raise SearchError("the free text is longer than 256 characters")
    return search


def _apply(search: Search, kind: str, key: str, value: str, now: float) -> None:
    lowered = value.lower()
    if kind == "status":
        _one_of(search.statuses, key, lowered, STATUSES)
    elif kind == "severity":
        if lowered.startswith(">="):
            floor = lowered[2:]
            _check(key, floor, semconv.SEVERITIES)
            rank = semconv.SEVERITY_RANK[floor]
            search.severities.extend(
                name for name in semconv.SEVERITIES if semconv.SEVERITY_RANK[name] >= rank
            )
        else:
            _one_of(search.severities, key, lowered, semconv.SEVERITIES)
    elif kind == "category":
        search.categories.append(value)
    elif kind == "service":
        search.services.append(value)
    elif kind == "type":
        search.types.append(value)
    elif kind == "tag":
        search.tags.append(value)
    elif kind == "handled":
        if lowered in _TRUE:
            search.handled = control_pb2.HANDLED_SOME
        elif lowered in _FALSE:
            search.handled = control_pb2.HANDLED_ESCAPED
        else:
            raise SearchError(f"{key}:{value}: use {key}:true or {key}:false")
    else:
        since = _since(key, lowered, now)
        if kind == "seen":
            search.seen_since = since
        elif kind == "new":
            search.first_seen_since = since
        else:
            search.regressed_since = since


def _one_of(values: list[str], key: str, value: str, allowed: tuple[str, ...]) -> None:
    _check(key, value, allowed)
    values.append(value)


def _check(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SearchError(f"{key}:{value}: use one of {', '.join(allowed)}")


def _since(key: str, value: str, now: float) -> int:
    match = _DURATION.match(value)
    if not match:
        raise SearchError(f"{key}:{value}: give a duration like 30m, 2h, 7d or 1w")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return max(int((now - seconds) * 1e9), 1)
