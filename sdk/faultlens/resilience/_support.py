"""Small helpers shared by the resilience modules: span events, callbacks, wrapping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from faultlens._capture import function_kind
from faultlens._internal_errors import report_internal_error

_log = logging.getLogger("faultlens")


def _on_current_span(action: Callable[[Span], object], what: str) -> None:
    """Apply ``action`` to the current span if it is recording; never raises."""
    try:
        span = trace.get_current_span()
        if span.is_recording():
            action(span)
    except Exception:
        report_internal_error(what)


def add_span_event(name: str, attributes: Mapping[str, AttributeValue]) -> None:
    """Add an event to the current span if it is recording; never raises."""
    _on_current_span(lambda span: span.add_event(name, attributes), f"span event {name}")


def set_span_attribute(name: str, value: AttributeValue) -> None:
    """Set an attribute on the current span if it is recording; never raises."""
    _on_current_span(lambda span: span.set_attribute(name, value), f"span attribute {name}")


def jsonable(record: Any) -> dict[str, Any]:
    """A dataclass instance as a JSON-ready dict (datetimes in ISO 8601)."""
    return {
        item.name: value.isoformat() if isinstance(value, datetime) else value
        for item in fields(record)
        for value in (getattr(record, item.name),)
    }


def run_callbacks(callbacks: Iterable[Callable[..., object]], *args: Any, what: str) -> None:
    """Call each callback with ``args``; one that raises is logged and the rest still run."""
    for callback in callbacks:
        try:
            callback(*args)
        except Exception:
            _log.exception("faultlens: %s callback %r raised", what, callback)


def callable_kind(func: Callable[..., Any], what: str) -> Literal["sync", "async"]:
    """``sync`` or ``async``; generators cannot be protected (a retry or a breaker
    cannot re-run or judge a half-consumed iteration), so they raise ``TypeError``."""
    if not callable(func):
        raise TypeError(f"faultlens: {what} needs a callable, got {type(func).__name__}")
    kind = function_kind(func)
    if kind in ("generator", "async_generator"):
        raise TypeError(
            f"faultlens: {what} cannot wrap the generator function {func!r}; "
            "wrap a function that returns the collected result instead"
        )
    return "async" if kind == "async" else "sync"


def qualified_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a function (a readable name for an unnamed policy)."""
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{qualname}"
