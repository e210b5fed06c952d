"""Retry with backoff that does not hide a dying dependency.

Forms::

    @retry                                   # defaults (FAULTLENS_RETRY_* variables)
    def fetch(): ...

    @retry(attempts=5, deadline=10, on=(ConnectionError, TimeoutError))
    async def fetch_rates(): ...

    policy = Retry("quotes", attempts=4, backoff=exponential(0.2, cap=5))
    quote = policy.call(fetch_quote, "AAPL")         # inline
    quote = await policy.acall(fetch_quote_async, "AAPL")

Each call keeps its own attempt count (nothing is shared between concurrent
calls). After a failed attempt the policy gives up when the exception is marked
permanent (:func:`~faultlens.resilience.permanent`, ``__faultlens_permanent__``
— ``CircuitOpenError`` and ``HaltedError`` are), is one of ``permanent``, or
does not match ``on`` (types or a predicate); when ``attempts`` are used up; or
when waiting the next backoff delay would pass ``deadline`` (seconds since the
call started). Otherwise it adds a ``faultlens.retry`` event to the current
span (``retry.name``, ``retry.attempt``, ``retry.delay_s``, ``exception.type``)
— a retry is not a failure — waits, and tries again.

When it gives up, the last exception is recorded **once** as an escaped failure
with ``failure.source=retry`` (plus ``retry.name``, ``retry.attempts``,
``retry.outcome``) and re-raised unchanged. With ``retry_on_result`` a result
for which the predicate is true is retried like a failure; if the last attempt
still returns one, :class:`~faultlens.resilience.RetryExhaustedError` is raised.
``BaseException``\\ s that are not ``Exception``\\ s (cancellation,
``KeyboardInterrupt``) pass through at once, unrecorded.

``attempt_timeout`` (coroutine functions only) bounds each attempt with
``asyncio.wait_for``; with a ``deadline`` each attempt is also bounded by the
time left. Timed-out attempts raise ``TimeoutError``, which is retried like any
other matching exception.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, overload

from opentelemetry.metrics import MeterProvider
from opentelemetry.util.types import AttributeValue

from faultlens._fingerprint import hash_parts
from faultlens._recorder import record_failure
from faultlens.resilience import _metrics as metrics
from faultlens.resilience import _names as names
from faultlens.resilience._backoff import Backoff, exponential
from faultlens.resilience._names import RetryOutcome
from faultlens.resilience._settings import (
    ExceptionMatch,
    Problems,
    defaults,
    exception_types,
    matcher,
)
from faultlens.resilience._support import add_span_event, callable_kind, qualified_name
from faultlens.resilience._testing import CLOCKS, TESTING
from faultlens.resilience.errors import RetryExhaustedError, is_permanent
from faultlens.semconv import EXCEPTION_TYPE, qualified_type_name

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_DEFAULT_NAME = "retry"


class Retry:
    """A retry policy: a decorator (sync and async) and ``call`` / ``acall`` inline.

    ``attempts`` counts the first one (default ``FAULTLENS_RETRY_ATTEMPTS``, 3);
    ``backoff`` defaults to :func:`~faultlens.resilience.exponential` with
    full jitter from ``FAULTLENS_RETRY_INITIAL_DELAY`` capped at
    ``FAULTLENS_RETRY_MAX_DELAY``. ``name`` labels the metrics and events; a
    policy without one that decorates a function is named after it
    (``module.qualname``). In tests, :func:`faultlens.resilience.set_testing` limits the
    attempts and skips the waits of every policy at once.

    Invalid settings raise one ``ValueError`` naming every problem.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        attempts: int | None = None,
        deadline: float | None = None,
        attempt_timeout: float | None = None,
        backoff: Backoff | None = None,
        on: ExceptionMatch = Exception,
        retry_on_result: Callable[[Any], bool] | None = None,
        permanent: type[BaseException] | tuple[type[BaseException], ...] = (),
        record: bool = True,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        env = defaults()
        problems = Problems(f"Retry {name or _DEFAULT_NAME!r}")
        problems.check(name is None or (isinstance(name, str) and bool(name)), "name is empty")
        count = env.retry_attempts if attempts is None else attempts
        problems.integer("attempts", count, 1)
        problems.positive("deadline", deadline)
        problems.positive("attempt_timeout", attempt_timeout)
        problems.check(
            backoff is None or isinstance(backoff, Backoff),
            f"backoff must have a delay(retry) method, got {backoff!r}",
        )
        matches = matcher("on", on, problems)
        never = exception_types("permanent", permanent, problems)
        problems.check(
            retry_on_result is None or callable(retry_on_result), "retry_on_result must be callable"
        )
        problems.raise_if_any()

        self.name = name or _DEFAULT_NAME
        self._named = name is not None
        self.attempts = count
        self.deadline = deadline
        self.attempt_timeout = attempt_timeout
        self.backoff: Backoff = backoff or exponential(
            env.retry_initial_delay, cap=env.retry_max_delay
        )
        self._matches = matches
        self._permanent = never
        self._result_check = retry_on_result
        self._record = record
        # The clock and the sleeps are the real ones but in faultlens' own tests
        # (faultlens.resilience._testing.clocks), read once here as an argument would be.
        self._clock = CLOCKS.monotonic
        self._sleep = CLOCKS.sleep
        self._async_sleep = CLOCKS.async_sleep
        self._meter_provider = meter_provider
        self._start_counting()

    def _start_counting(self) -> None:
        self._outcomes: dict[str, metrics.Tally] = {
            outcome: metrics.Tally() for outcome in names.RETRY_OUTCOMES
        }
        self._retries = metrics.Tally()
        metrics.attach("retry", self, self._meter_provider)

    def __repr__(self) -> str:
        return f"<Retry {self.name!r} attempts={self.attempts}>"

    def named(self, name: str) -> Retry:
        """A copy of this policy under another name (its own counts and metrics)."""
        twin = copy.copy(self)
        twin.name = name
        twin._named = True
        twin._start_counting()
        return twin

    # -- decisions -------------------------------------------------------------------------

    def _unacceptable(self, result: object) -> bool:
        return self._result_check is not None and bool(self._result_check(result))

    def _decide(
        self, attempt: int, error: Exception | None, result: object, started: float
    ) -> float | BaseException:
        """After a failed ``attempt``: the delay before the next one, or what to raise."""
        if error is not None and (
            is_permanent(error) or isinstance(error, self._permanent) or not self._retryable(error)
        ):
            return self._give_up("not_retried", attempt, error, result)
        if attempt >= TESTING.attempts_for(self.attempts):
            return self._give_up("exhausted", attempt, error, result)
        delay = self.backoff.delay(attempt)
        waited = 0.0 if TESTING.active else delay  # testing mode does not wait
        if self.deadline is not None and self._clock() - started + waited >= self.deadline:
            return self._give_up("deadline", attempt, error, result)
        event: dict[str, AttributeValue] = {
            names.RETRY_NAME: self.name,
            names.RETRY_ATTEMPT: attempt,
            names.RETRY_DELAY: delay,
        }
        if error is not None:
            event[EXCEPTION_TYPE] = qualified_type_name(type(error))
        add_span_event(names.RETRY_EVENT, event)
        self._retries.add()
        return delay

    def _retryable(self, error: Exception) -> bool:
        try:
            return bool(self._matches(error))
        except Exception:
            return False

    def _give_up(
        self, outcome: RetryOutcome, attempt: int, error: Exception | None, result: object
    ) -> BaseException:
        self._outcomes[outcome].add()
        fingerprint = None
        if error is None:
            error = RetryExhaustedError(self.name, attempt, result)
            fingerprint = hash_parts(("faultlens.retry.exhausted", self.name))
        if self._record:
            record_failure(
                error,
                handled=False,
                source="retry",
                fingerprint=fingerprint,
                attributes={
                    names.RETRY_NAME: self.name,
                    names.RETRY_ATTEMPTS: attempt,
                    names.RETRY_OUTCOME: outcome,
                },
            )
        return error

    def _succeeded(self, attempt: int) -> None:
        self._outcomes["success" if attempt == 1 else "recovered"].add()

    # -- calling ---------------------------------------------------------------------------

    def call(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call ``func(*args, **kwargs)`` under this policy."""
        if self.attempt_timeout is not None:
            raise ValueError(
                f"faultlens: Retry {self.name!r}: attempt_timeout applies to coroutine "
                "functions only (use acall, or a deadline)"
            )
        started = self._clock() if self.deadline is not None else 0.0
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            return self._again(func, args, kwargs, error=exc, result=None, started=started)
        if self._result_check is not None and self._unacceptable(result):
            return self._again(func, args, kwargs, error=None, result=result, started=started)
        self._outcomes["success"].add()
        return result

    def _again(
        self,
        func: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        error: Exception | None,
        result: Any,
        started: float,
    ) -> T:
        """The retry loop of :meth:`call`, entered after the first attempt failed."""
        attempt = 1
        while True:
            decision = self._decide(attempt, error, result, started)
            if isinstance(decision, BaseException):
                raise decision
            if not TESTING.active:
                self._sleep(decision)
            attempt += 1
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                error, result = exc, None
                continue
            error = None
            if not self._unacceptable(result):
                self._succeeded(attempt)
                return result  # type: ignore[no-any-return]

    async def acall(self, func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await ``func(*args, **kwargs)`` under this policy."""
        started = self._clock() if self.deadline is not None else 0.0
        attempt = 1
        while True:
            error: Exception | None = None
            outcome: object = None
            try:
                result = await self._attempt(func, args, kwargs, started)
            except Exception as exc:
                error = exc
            else:
                if not self._unacceptable(result):
                    self._succeeded(attempt)
                    return result
                outcome = result
            decision = self._decide(attempt, error, outcome, started)
            if isinstance(decision, BaseException):
                raise decision
            if not TESTING.active:
                await self._async_sleep(decision)
            attempt += 1

    async def _attempt(
        self,
        func: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        started: float,
    ) -> T:
        timeout = self.attempt_timeout
        if self.deadline is not None:
            left = self.deadline - (self._clock() - started)
            timeout = left if timeout is None else min(timeout, left)
        if timeout is None:
            return await func(*args, **kwargs)
        try:
            return await asyncio.wait_for(func(*args, **kwargs), max(timeout, 0.0))
        except asyncio.TimeoutError as exc:  # not the builtin TimeoutError before 3.11
            raise TimeoutError(
                f"attempt of retry {self.name!r} timed out after {max(timeout, 0.0):.3g} s"
            ) from exc

    def __call__(self, func: F) -> F:
        """Decorate a function or coroutine function (generators raise ``TypeError``)."""
        policy = self if self._named else self.named(qualified_name(func))
        if callable_kind(func, "Retry") == "async":

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await policy.acall(func, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        if policy.attempt_timeout is not None:
            raise ValueError(
                f"faultlens: Retry {policy.name!r}: attempt_timeout applies to coroutine "
                f"functions only, and {func!r} is not one (use a deadline)"
            )
        if policy.deadline is not None or policy._result_check is not None:

            @functools.wraps(func)
            def checked_wrapper(*args: Any, **kwargs: Any) -> Any:
                return policy.call(func, *args, **kwargs)

            return checked_wrapper  # type: ignore[return-value]

        success = policy._outcomes["success"].add

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                return policy._again(func, args, kwargs, error=exc, result=None, started=0.0)
            success()
            return result

        return wrapper  # type: ignore[return-value]

    # -- reporting -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Finished calls by outcome, plus ``retries`` (attempts after the first)."""
        counts: dict[str, int] = {outcome: tally.value for outcome, tally in self._outcomes.items()}
        counts["retries"] = self._retries.value
        return counts

    def observe(self, instrument: str) -> Iterable[metrics.Point]:
        """Points of ``instrument`` (see :data:`faultlens.resilience._metrics.INSTRUMENTS`)."""
        if instrument == "faultlens.retry.calls":
            return [
                (tally.value, {names.RETRY_NAME: self.name, names.RETRY_OUTCOME: outcome})
                for outcome, tally in self._outcomes.items()
            ]
        if instrument == "faultlens.retry.attempts":
            counts = self.counts()
            return [(sum(counts.values()), {names.RETRY_NAME: self.name})]
        return ()


@overload
def retry(func: F, /) -> F: ...


@overload
def retry(
    func: None = None,
    /,
    *,
    name: str | None = None,
    attempts: int | None = None,
    deadline: float | None = None,
    attempt_timeout: float | None = None,
    backoff: Backoff | None = None,
    on: ExceptionMatch = Exception,
    retry_on_result: Callable[[Any], bool] | None = None,
    permanent: type[BaseException] | tuple[type[BaseException], ...] = (),
    record: bool = True,
    meter_provider: MeterProvider | None = None,
) -> Retry: ...


def retry(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    attempts: int | None = None,
    deadline: float | None = None,
    attempt_timeout: float | None = None,
    backoff: Backoff | None = None,
    on: ExceptionMatch = Exception,
    retry_on_result: Callable[[Any], bool] | None = None,
    permanent: type[BaseException] | tuple[type[BaseException], ...] = (),
    record: bool = True,
    meter_provider: MeterProvider | None = None,
) -> Any:
    """``@retry`` with the defaults, or ``@retry(...)`` with :class:`Retry`'s options."""
    policy = Retry(
        name,
        attempts=attempts,
        deadline=deadline,
        attempt_timeout=attempt_timeout,
        backoff=backoff,
        on=on,
        retry_on_result=retry_on_result,
        permanent=permanent,
        record=record,
        meter_provider=meter_provider,
    )
    return policy if func is None else policy(func)
