"""Fallback: call the primary; if it fails, call the fallback — and say so.

Forms::

    @fallback(cached_quote)               # cached_quote gets the same arguments
    def live_quote(symbol): ...

    quotes = Fallback(cached_quote, name="quotes")
    quote = quotes.call(live_quote, "AAPL")          # inline
    quote = await quotes.acall(live_quote_async, "AAPL")

A degraded result is never silent. When the primary raises an exception that
matches ``on`` (types or a predicate; default ``Exception``):

* the primary's exception is recorded as a *handled* failure (the program went
  on), with ``fallback.name`` and ``faultlens.degraded=true``; its source is
  ``decorator`` for the decorator form and ``manual`` inline;
* the current span gets the attribute ``faultlens.degraded=true`` and a
  ``faultlens.fallback`` event (``fallback.name``, ``exception.type``);
* ``faultlens.fallback.calls`` counts the call with ``fallback.outcome=fallback``
  and the health report shows the fallback ``degraded`` until a primary call
  succeeds again.

If the fallback raises too, its exception escapes (chained to the primary's as
``__context__``), is recorded as an escaped failure, and the call counts as
``failed``. Exceptions that do not match ``on``, and ``BaseException``\\ s that are
not ``Exception``\\ s, pass through untouched. The fallback may be a plain or a
coroutine function for :meth:`Fallback.acall`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from opentelemetry.metrics import MeterProvider

from faultlens import semconv
from faultlens._recorder import record_failure
from faultlens.resilience import _metrics as metrics
from faultlens.resilience import _names as names
from faultlens.resilience import _report as report
from faultlens.resilience._settings import ExceptionMatch, Problems, matcher
from faultlens.resilience._support import (
    add_span_event,
    callable_kind,
    qualified_name,
    set_span_attribute,
)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Fallback:
    """A fallback for failing primaries; a decorator (sync and async) and ``call``/``acall``.

    ``name`` labels metrics, events and the health report (default: the
    fallback function's ``module.qualname``). ``record=False`` stops recording
    failures (span attribute, event and metrics stay).
    """

    def __init__(
        self,
        fallback: Callable[..., Any],
        *,
        name: str | None = None,
        on: ExceptionMatch = Exception,
        record: bool = True,
        meter_provider: MeterProvider | None = None,
        register: bool = True,
    ) -> None:
        problems = Problems(f"Fallback {name!r}")
        problems.check(callable(fallback), f"fallback must be callable, got {fallback!r}")
        problems.check(name is None or (isinstance(name, str) and bool(name)), "name is empty")
        matches = matcher("on", on, problems)
        problems.raise_if_any()
        self.fallback = fallback
        self.name = name or qualified_name(fallback)
        self._matches = matches
        self._record = record
        self._outcomes: dict[str, metrics.Tally] = {
            outcome: metrics.Tally() for outcome in names.FALLBACK_OUTCOMES
        }
        self.degraded = False
        metrics.attach("fallback", self, meter_provider)
        if register:
            report.register(self)

    def __repr__(self) -> str:
        return f"<Fallback {self.name!r}>"

    def _applies(self, exc: Exception) -> bool:
        try:
            return bool(self._matches(exc))
        except Exception:
            return False

    def _degrade(self, exc: Exception, source: semconv.Source) -> None:
        self.degraded = True
        self._outcomes["fallback"].add()
        set_span_attribute(names.DEGRADED, True)
        add_span_event(
            names.FALLBACK_EVENT,
            {
                names.FALLBACK_NAME: self.name,
                semconv.EXCEPTION_TYPE: semconv.qualified_type_name(type(exc)),
            },
        )
        if self._record:
            record_failure(
                exc,
                handled=True,
                source=source,
                attributes={names.FALLBACK_NAME: self.name, names.DEGRADED: True},
            )

    def _failed(self, exc: BaseException, source: semconv.Source) -> None:
        self._outcomes["failed"].add()
        if self._record:
            record_failure(
                exc, handled=False, source=source, attributes={names.FALLBACK_NAME: self.name}
            )

    def _primary_ok(self) -> None:
        self._outcomes["primary"].add()
        if self.degraded:
            self.degraded = False

    def call(self, primary: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``primary(*args, **kwargs)``, or the fallback's result if it fails."""
        return self._call(primary, args, kwargs, "manual")

    def _call(
        self,
        primary: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        source: semconv.Source,
    ) -> T:
        try:
            result = primary(*args, **kwargs)
        except Exception as exc:
            if not self._applies(exc):
                raise
            self._degrade(exc, source)
            try:
                return self.fallback(*args, **kwargs)  # type: ignore[no-any-return]
            except BaseException as second:
                self._failed(second, source)
                raise
        self._primary_ok()
        return result

    async def acall(self, primary: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await ``primary(*args, **kwargs)``, or the fallback's (awaited) result if it fails."""
        return await self._acall(primary, args, kwargs, "manual")

    async def _acall(
        self,
        primary: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        source: semconv.Source,
    ) -> T:
        try:
            result = await primary(*args, **kwargs)
        except Exception as exc:
            if not self._applies(exc):
                raise
            self._degrade(exc, source)
            try:
                value = self.fallback(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
                return value  # type: ignore[no-any-return]
            except BaseException as second:
                self._failed(second, source)
                raise
        self._primary_ok()
        return result

    def __call__(self, primary: F) -> F:
        """Decorate the primary (a function or coroutine function)."""
        if callable_kind(primary, "Fallback") == "async":

            @functools.wraps(primary)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self._acall(primary, args, kwargs, "decorator")

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(primary)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self._call(primary, args, kwargs, "decorator")

        return wrapper  # type: ignore[return-value]

    def counts(self) -> dict[str, int]:
        """Calls by outcome: ``primary``, ``fallback`` (degraded), ``failed``."""
        return {outcome: tally.value for outcome, tally in self._outcomes.items()}

    def health(self) -> report.ComponentHealth:
        """``degraded`` while the most recent call returned the fallback's result."""
        return report.ComponentHealth(
            "fallback",
            self.name,
            "degraded" if self.degraded else "healthy",
            {"degraded": self.degraded, "calls": self.counts()},
        )

    def observe(self, instrument: str) -> Iterable[metrics.Point]:
        """Points of ``instrument`` (see :data:`faultlens.resilience._metrics.INSTRUMENTS`)."""
        if instrument != "faultlens.fallback.calls":
            return ()
        return [
            (tally.value, {names.FALLBACK_NAME: self.name, names.FALLBACK_OUTCOME: outcome})
            for outcome, tally in self._outcomes.items()
        ]


def fallback(
    to: Callable[..., Any],
    *,
    name: str | None = None,
    on: ExceptionMatch = Exception,
    record: bool = True,
    meter_provider: MeterProvider | None = None,
) -> Fallback:
    """``@fallback(cached_quote)``: a :class:`Fallback` to use as a decorator."""
    return Fallback(to, name=name, on=on, record=record, meter_provider=meter_provider)
