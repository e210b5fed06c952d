"""``faultlens.capture``: record exceptions that escape a function or a block.

``capture`` never swallows: an exception escaping the function or block goes on
unchanged and becomes a failure. Forms::

    @faultlens.capture
    def charge(order): ...

    @faultlens.capture(category="dependency", severity="high", attributes={"peer": "psp"})
    async def fetch(): ...

    with faultlens.capture(category="io"):
        ...

Decorated sync functions, coroutine functions, generators and async generators
(exceptions raised while iterating count too), methods, static and class
methods all work. How the decorator observes them:

* **Python 3.12+**: the decorator returns the function itself, unchanged, and
  the capture engine (:mod:`faultlens._monitoring`) watches its code (and the
  code nested in it): identity, frames, pickling and speed stay the
  function's own. The failure follows the engine's rule: ``failure.handled``
  says whether application code caught the exception after it left the
  function. The code is watched however the function is reached, also
  through references taken before decorating (``faultlens.capture(f)`` called
  on an existing ``f`` watches ``f`` everywhere). Objects that are not Python
  functions (callable instances, ``functools.partial``), or a process where
  every ``sys.monitoring`` tool id is taken, get the wrapper below.
* **Python 3.10/3.11**: a :mod:`wrapt` wrapper (:mod:`faultlens._wrappers`) that
  keeps the kind, identity, pickling and copying of the function and hides its
  own frame as far as Python allows; the failure is recorded where it leaves
  the function, as escaped.

With ``FAULTLENS_DISABLED`` set when the decorator runs, the function is
returned as it is and not watched. A ``with`` block records an exception
escaping it (source ``manual``); on 3.12+ the engine then follows it like one
escaping a decorated function.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import CodeType, FrameType, TracebackType
from typing import Any, Literal, TypeVar, overload

from opentelemetry.util.types import AttributeValue

from faultlens import _monitoring as monitoring
from faultlens import _wrappers as wrappers
from faultlens import semconv
from faultlens._classify import validate_category, validate_severity
from faultlens._monitoring import Outcome
from faultlens._recorder import is_disabled, record_failure
from faultlens._wrappers import Kind, codes_of, function_kind, python_function

__all__ = ["Capture", "CaptureOptions", "Kind", "RecordingClient", "capture", "function_kind"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """How escaping exceptions are recorded."""

    category: str | None = None
    severity: str | None = None
    fingerprint: str | None = None
    attributes: Mapping[str, AttributeValue] | None = None
    source: semconv.Source = "decorator"

    def __post_init__(self) -> None:
        if self.category is not None:
            validate_category(self.category)
        if self.severity is not None:
            validate_severity(self.severity)

    def record(
        self,
        exc: BaseException,
        *,
        handled: bool = False,
        severity_floor: str | None = None,
        span_status: bool = False,
    ) -> None:
        """Record ``exc`` with these options (by default: escaped, at the function's boundary).

        ``span_status=False`` leaves the status of a span faultlens did not start
        alone: at the boundary it is not known yet whether the exception will
        escape that span.
        """
        record_failure(
            exc,
            handled=handled,
            category=self.category,
            severity=self.severity,
            fingerprint=self.fingerprint,
            attributes=self.attributes,
            source=self.source,
            severity_floor=severity_floor,
            span_status=span_status,
        )


class RecordingClient:
    """Turns the engine's outcomes (:mod:`faultlens._monitoring`) into failures.

    ``caught`` and ``unresolved`` are handled failures, ``escaped`` and
    ``uncaught`` escaped ones (``uncaught`` at least ``critical``, as a failure
    reaching ``sys.excepthook``); ``inside`` and ``swallowed`` are not failures.
    """

    __slots__ = ("options",)

    def __init__(self, options: CaptureOptions) -> None:
        self.options = options

    def on_outcome(self, outcome: Outcome) -> None:
        fate = outcome.fate
        if fate in ("inside", "swallowed"):
            return
        self.options.record(
            outcome.exception,
            handled=fate in ("caught", "unresolved"),
            severity_floor="critical" if fate == "uncaught" else None,
            span_status=True,
        )


def watch(func: Any, client: RecordingClient) -> list[CodeType] | None:
    """Watch ``func``'s code with the engine (3.12+); None when it must be wrapped instead."""
    if python_function(func) is None:
        return None
    monitor = monitoring.acquire()
    if monitor is None:
        return None
    codes = codes_of(func)
    monitor.watch(codes, client)
    return codes


def wrap(func: F, options: CaptureOptions) -> F:
    """``func`` in a wrapper that records exceptions escaping it with ``options``."""
    return wrappers.wrap(func, options.record)  # type: ignore[return-value]


class Capture:
    """Decorator and (async) context manager returned by :func:`capture`.

    Decorating records with ``options.source`` (``decorator``); a ``with`` block
    records with source ``manual``.
    """

    def __init__(self, options: CaptureOptions) -> None:
        self.options = options
        self._block_options = replace(options, source="manual")

    def __call__(self, func: F) -> F:
        if is_disabled():
            return func
        if watch(func, RecordingClient(self.options)) is not None:
            return func
        return wrap(func, self.options)

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is not None:
            self._escaped(exc, sys._getframe(1))
        return False

    async def __aenter__(self) -> Capture:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is not None:
            self._escaped(exc, sys._getframe(1))
        return False

    def _escaped(self, exc: BaseException, frame: FrameType) -> None:
        """An exception left the block run by ``frame``: follow it (3.12+) or record it."""
        monitor = monitoring.acquire() if monitoring.supported() else None
        if monitor is not None:
            monitor.follow(exc, RecordingClient(self._block_options), frame)
        else:
            self._block_options.record(exc)


@overload
def capture(func: F, /) -> F: ...


@overload
def capture(
    func: None = None,
    /,
    *,
    category: str | None = None,
    severity: str | None = None,
    fingerprint: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Capture: ...


def capture(
    func: Callable[..., Any] | None = None,
    /,
    *,
    category: str | None = None,
    severity: str | None = None,
    fingerprint: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Record exceptions escaping a function (decorator) or a block (context manager).

    ``category``, ``severity``, ``fingerprint`` and ``attributes`` override what
    faultlens would compute; an invalid category or severity raises
    ``ValueError`` here, at decoration time. Used as a context manager the
    failure's source is ``manual``; as a decorator, ``decorator``.
    """
    if func is not None:
        if not callable(func):
            raise TypeError(f"faultlens.capture: expected a callable, got {type(func).__name__}")
        return Capture(CaptureOptions())(func)
    return Capture(CaptureOptions(category, severity, fingerprint, attributes))
