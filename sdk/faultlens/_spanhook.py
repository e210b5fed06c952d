"""One exception, one event: the SDK's ``Span.record_exception`` goes through faultlens.

The contrib instrumentations (Flask, Django, ASGI/FastAPI, requests, …) and
``use_span``/``start_as_current_span`` call ``span.record_exception(exc)`` for an
exception escaping a span, and add their own ``exception`` event — next to the
one faultlens already wrote for the same exception (its decorator, the zero-code
capture, the logging capture of the framework's error log), or before faultlens
sees it. Counted as they come, one failing request would be two occurrences in
two groups.

While installed, ``opentelemetry.sdk.trace.Span.record_exception`` asks
:func:`faultlens._recorder.record_span_exception` what the event should carry and
then writes the event the SDK would (same name, time, attribute limits,
``exception.escaped``, the caller's attributes) with faultlens' attributes, or
writes none:

* an exception faultlens already recorded **on this span** gets no second event;
* an exception counted on **another span** (the inner span whose function it
  escaped first) gets its event as usual, carrying the failure's fingerprint and
  attributes with ``failure.count = 0`` — a reference, so summing counts stays
  exact and every span still shows what escaped it;
* an exception seen **for the first time** becomes a faultlens failure in that
  event (category, severity, fingerprint, redacted message and stack trace,
  ``failure.source = auto``), and every later layer that sees the same exception
  adds nothing. ``failure.handled`` is false when the call comes from
  OpenTelemetry's own code — ``use_span``/``start_as_current_span`` exits, the
  contrib instrumentations, which record what escapes the operation they wrap —
  or passes ``escaped=True``; an application's own call without it records a
  handled failure (the OpenTelemetry conventions ask instrumentations to record
  only exceptions that escape; applications decide).

The span's status stays what the caller sets. Attributes the caller passes are
kept; faultlens' ``exception.*``/``failure.*`` values win over them. Spans of
other API implementations are not touched. ``uninstall_span_hook`` puts the
SDK's method back (if nobody replaced it after faultlens).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import Span
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_ESCAPED,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.util import types

from faultlens._internal_errors import report_internal_error
from faultlens._recorder import record_span_exception

_lock = threading.Lock()
_original: list[Callable[..., None]] = []


def _called_by_opentelemetry() -> bool:
    """Whether the SDK method was called from OpenTelemetry's own code: ``use_span``'s
    exit, a contrib instrumentation's ``except`` around the operation it traces.

    Frame 1 is :func:`_record_exception`, frame 2 its caller.
    """
    module = sys._getframe(2).f_globals.get("__name__")
    return isinstance(module, str) and module.startswith("opentelemetry.")


def _record_exception(
    self: Span,
    exception: BaseException,
    attributes: types.Attributes = None,
    timestamp: int | None = None,
    escaped: bool = False,
) -> None:
    original = _original[0] if _original else _sdk_method
    extra: dict[str, Any] | None = {}
    try:
        if self.is_recording():
            extra = record_span_exception(
                self, exception, escaping=escaped or _called_by_opentelemetry()
            )
    except Exception:
        report_internal_error("span hook")
    if extra is None:
        return
    if not extra:
        original(self, exception, attributes, timestamp, escaped)
        return
    # What the SDK writes (it would format the stack trace a second time), with
    # faultlens' exception.* values, which are redacted, and failure.* added.
    merged: dict[str, Any] = {
        EXCEPTION_TYPE: extra.get(EXCEPTION_TYPE),
        EXCEPTION_MESSAGE: extra.get(EXCEPTION_MESSAGE),
        EXCEPTION_STACKTRACE: extra.get(EXCEPTION_STACKTRACE),
        EXCEPTION_ESCAPED: str(escaped),
    }
    if attributes:
        merged.update(attributes)
    merged.update(extra)
    self.add_event(name="exception", attributes=merged, timestamp=timestamp)


_sdk_method: Callable[..., None] = Span.record_exception


def install_span_hook() -> None:
    """Route ``Span.record_exception`` of the OpenTelemetry SDK through faultlens (idempotent)."""
    with _lock:
        if _original:
            return
        _original.append(Span.record_exception)
        Span.record_exception = _record_exception  # type: ignore[method-assign]


def uninstall_span_hook() -> None:
    """Put the SDK's ``Span.record_exception`` back (unless someone replaced it after us)."""
    with _lock:
        if not _original:
            return
        original = _original.pop()
        if Span.record_exception is _record_exception:
            Span.record_exception = original  # type: ignore[method-assign]


def span_hook_installed() -> bool:
    """True while the hook is installed."""
    return bool(_original) and Span.record_exception is _record_exception
