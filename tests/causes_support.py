"""Builders for the root-cause tests: failures and spans as the linking rule reads them."""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from faultlens_collector.causes.linking import STATUS_ERROR, STATUS_OK, STATUS_UNSET, SpanFacts

__all__ = [
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_UNSET",
    "Failure",
    "formatted",
    "span",
    "span_id",
]

MS = 1_000_000


@dataclass(frozen=True)
class Failure:
    """A failure event (what ``Occurrence`` offers the rule)."""

    fingerprint: str
    time_unix_nano: int = 0
    handled: bool | None = False
    exception_type: str = "app.Error"
    stacktrace: str = ""
    count: int = 1
    service: str = "svc"
    category: str = "unknown"


_ids = itertools.count(1)


def span_id(number: int) -> bytes:
    return number.to_bytes(8, "big")


def span(
    number: int,
    parent: int | None,
    start_ms: float,
    end_ms: float,
    *failures: Failure,
    status: int = STATUS_ERROR,
    service: str = "svc",
) -> SpanFacts:
    """Span ``number`` under ``parent`` (None: the trace's root), times in milliseconds."""
    return SpanFacts(
        span_id(number),
        span_id(parent) if parent is not None else b"",
        int(start_ms * MS),
        int(end_ms * MS),
        status,
        service,
        tuple(failures),
    )


def at(ms: float) -> int:
    return int(ms * MS)


def formatted(raiser: Callable[[], object]) -> str:
    """The printed traceback of what ``raiser`` raises (as an SDK sends it)."""
    try:
        raiser()
    except BaseException as exc:
        return "".join(traceback.format_exception(exc))
    raise AssertionError("did not raise")
