"""Circuit breaker: stop calling a dependency that keeps failing, try it again later.

States (the OpenTelemetry status metric ``faultlens.breaker.status`` reports them)::

    closed ──(N consecutive failures, or failure rate >= r over the window)──▶ open
    open ──(recovery_timeout elapsed; next call or state read)──▶ half_open
    half_open ──(success_threshold trial successes)──▶ closed
    half_open ──(a trial call fails)──▶ open
    any ──force_open()──▶ forced_open ──reset()──▶ closed;  any ──reset()──▶ closed

While ``open`` or ``forced_open`` every call is refused with
:class:`~faultlens.resilience.CircuitOpenError`; ``half_open`` lets at most
``half_open_max_calls`` trial calls through at once and refuses the rest.

What counts: an exception matching ``failure_on`` (types or a predicate;
default ``Exception``) is a failure, unless it matches ``exclude``, which makes
it count as nothing; any other exception counts as a success (the dependency
answered). ``BaseException``\\ s that are not ``Exception``\\ s (cancellation,
``KeyboardInterrupt``) count as nothing. With ``slow_call_seconds`` a call that
returns but takes at least that long counts as a failure too.

Concurrency: the protected call never runs under a lock. The closed-state
success path takes no lock at all (an atomic count and two attribute reads);
failures, trial calls and rate windows update the state under a short lock.
Every outcome carries the *generation* of the state it was admitted in, so a
slow call that started before a transition cannot flip the new state.

faultlens records, with ``failure.source=breaker``: the exception that opened
the breaker (once, as an escaped failure) and every refused call's
``CircuitOpenError`` (fingerprinted per breaker, so they group and storm control
aggregates them). ``record=False`` turns both off.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from opentelemetry.metrics import MeterProvider
from opentelemetry.util.types import AttributeValue

from faultlens._fingerprint import hash_parts
from faultlens._recorder import record_failure
from faultlens.resilience import _metrics as metrics
from faultlens.resilience import _names as names
from faultlens.resilience import _report as report
from faultlens.resilience._names import BreakerOutcome, BreakerState
from faultlens.resilience._settings import (
    ExceptionMatch,
    Problems,
    defaults,
    exception_types,
    matcher,
)
from faultlens.resilience._support import add_span_event, callable_kind, run_callbacks
from faultlens.resilience._testing import CLOCKS
from faultlens.resilience.errors import CircuitOpenError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"
FORCED_OPEN: Final = "forced_open"

StateChangeCallback = Callable[["CircuitBreaker", str, str], object]


class _CountWindow:
    """Outcomes of the last ``size`` calls."""

    def __init__(self, size: int) -> None:
        self._ring = [False] * size
        self._index = 0
        self.calls = 0
        self.failures = 0

    def add(self, now: float, failed: bool) -> None:
        size = len(self._ring)
        if self.calls == size:
            self.failures -= self._ring[self._index]
        else:
            self.calls += 1
        self._ring[self._index] = failed
        self.failures += failed
        self._index = (self._index + 1) % size

    def totals(self, now: float) -> tuple[int, int]:
        return self.calls, self.failures

    def clear(self) -> None:
        self._ring = [False] * len(self._ring)
        self._index = self.calls = self.failures = 0


class _TimeWindow:
    """Outcomes of the last ``seconds``, in ten buckets (the oldest one drops off whole)."""

    BUCKETS: Final = 10

    def __init__(self, seconds: float) -> None:
        self._width = seconds / self.BUCKETS
        self.clear()

    def add(self, now: float, failed: bool) -> None:
        epoch = math.floor(now / self._width)
        index = epoch % self.BUCKETS
        if self._epochs[index] != epoch:
            self._epochs[index] = epoch
            self._calls[index] = 0
            self._failures[index] = 0
        self._calls[index] += 1
        self._failures[index] += failed

    def totals(self, now: float) -> tuple[int, int]:
        oldest = math.floor(now / self._width) - self.BUCKETS + 1
        calls = failures = 0
        for index, epoch in enumerate(self._epochs):
            if epoch >= oldest:
                calls += self._calls[index]
                failures += self._failures[index]
        return calls, failures

    def clear(self) -> None:
        self._epochs = [-(2**62)] * self.BUCKETS
        self._calls = [0] * self.BUCKETS
        self._failures = [0] * self.BUCKETS


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """A snapshot of a breaker, for status pages and the health report."""

    name: str
    state: BreakerState
    consecutive_failures: int
    failure_rate: float | None
    retry_after: float | None
    calls: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    transitions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Change:
    previous: str
    state: str


class CircuitBreaker:
    """A named circuit breaker; a decorator (sync and async) and ``call`` / ``acall`` inline.

    ``failure_threshold`` consecutive failures open it (default
    ``FAULTLENS_BREAKER_FAILURE_THRESHOLD``, 5 — but when ``failure_rate`` is given
    only the rate trips it unless ``failure_threshold`` is given too).
    ``failure_rate`` (0 < r <= 1) opens it when at least ``minimum_calls`` calls
    are in the window and their failure share reaches ``r``; the window is the
    last ``window`` calls (default 100) or, with ``window_seconds``, the calls of
    that many seconds. ``recovery_timeout`` seconds after opening, up to
    ``half_open_max_calls`` trial calls go through; ``success_threshold`` trial
    successes close it. ``on_state_change(breaker, previous, new)`` callbacks run
    after each transition, outside the breaker's lock (one that raises is logged).

    Invalid settings raise one ``ValueError`` naming every problem.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int | None = None,
        failure_rate: float | None = None,
        window: int | None = None,
        window_seconds: float | None = None,
        minimum_calls: int = 10,
        recovery_timeout: float | None = None,
        half_open_max_calls: int | None = None,
        success_threshold: int | None = None,
        failure_on: ExceptionMatch = Exception,
        exclude: type[BaseException] | tuple[type[BaseException], ...] = (),
        slow_call_seconds: float | None = None,
        on_state_change: Iterable[StateChangeCallback] = (),
        record: bool = True,
        meter_provider: MeterProvider | None = None,
        register: bool = True,
    ) -> None:
        env = defaults()
        problems = Problems(f"CircuitBreaker {name!r}")
        problems.check(isinstance(name, str) and bool(name), "name must be a non-empty string")
        if failure_threshold is None and failure_rate is None:
            failure_threshold = env.breaker_failure_threshold
        problems.integer("failure_threshold", failure_threshold, 1)
        if failure_rate is not None:
            problems.at_least("failure_rate", failure_rate, 0)
            problems.check(
                not isinstance(failure_rate, (int, float)) or 0 < failure_rate <= 1,
                f"failure_rate must be in (0, 1], got {failure_rate!r}",
            )
        problems.check(
            window is None or window_seconds is None, "give window or window_seconds, not both"
        )
        problems.check(
            failure_rate is not None or (window is None and window_seconds is None),
            "window and window_seconds need failure_rate",
        )
        problems.integer("window", window, 1)
        problems.positive("window_seconds", window_seconds)
        problems.integer("minimum_calls", minimum_calls, 1)
        recovery = env.breaker_recovery_timeout if recovery_timeout is None else recovery_timeout
        problems.at_least("recovery_timeout", recovery, 0)
        probes = (
            env.breaker_half_open_max_calls
            if half_open_max_calls is None
            else (half_open_max_calls)
        )
        problems.integer("half_open_max_calls", probes, 1)
        successes = (
            env.breaker_success_threshold if success_threshold is None else (success_threshold)
        )
        problems.integer("success_threshold", successes, 1)
        problems.at_least("slow_call_seconds", slow_call_seconds, 0)
        counted = matcher("failure_on", failure_on, problems)
        excluded = exception_types("exclude", exclude, problems)
        problems.raise_if_any()

        self.name = name
        self.failure_threshold = failure_threshold
        self.failure_rate = failure_rate
        self.minimum_calls = minimum_calls
        self.recovery_timeout = float(recovery)
        self.half_open_max_calls = probes
        self.success_threshold = successes
        self.slow_call_seconds = slow_call_seconds
        self._counted = counted
        self._excluded = excluded
        self._callbacks = tuple(on_state_change)
        self._record = record
        self._clock = CLOCKS.monotonic  # a fake one in faultlens' tests (_testing.clocks)
        self._window: _CountWindow | _TimeWindow | None = None
        if failure_rate is not None:
            self._window = (
                _TimeWindow(window_seconds) if window_seconds else _CountWindow(window or 100)
            )
        # The closed-state success path may skip the lock when nothing else needs updating.
        self._fast = self._window is None and slow_call_seconds is None
        self._fingerprint = hash_parts(("faultlens.breaker.rejected", name))
        self._lock = threading.Lock()
        self._state: str = CLOSED
        self._generation = 0
        self._consecutive = 0
        self._opened_at = 0.0
        self._probes = 0
        self._probe_successes = 0
        self._start_reporting(meter_provider, register=register)

    def _start_reporting(self, meter_provider: MeterProvider | None, *, register: bool) -> None:
        self._outcomes: dict[str, metrics.Tally] = {
            outcome: metrics.Tally() for outcome in names.BREAKER_OUTCOMES
        }
        self._rejected: dict[str, metrics.Tally] = {
            state: metrics.Tally() for state in names.BREAKER_STATES
        }
        self._transitions: dict[str, metrics.Tally] = {
            state: metrics.Tally() for state in names.BREAKER_STATES
        }
        metrics.attach("breaker", self, meter_provider)
        if register:
            report.register(self)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._state}>"

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose recovery timeout passed becomes half-open)."""
        if self._state is OPEN:
            change = None
            with self._lock:
                if self._state is OPEN and self._clock() >= self._opened_at + self.recovery_timeout:
                    change = self._transition(HALF_OPEN)
            if change is not None:
                self._announce(change, None)
        return self._state  # type: ignore[return-value]

    @property
    def retry_after(self) -> float | None:
        """Seconds until an open breaker lets a trial call through (0 if not open; None
        while forced open)."""
        state = self.state
        if state == FORCED_OPEN:
            return None
        if state != OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.recovery_timeout - self._clock())

    def force_open(self) -> None:
        """Refuse every call until :meth:`reset` (e.g. while a dependency is in maintenance)."""
        self._set(FORCED_OPEN)

    def reset(self) -> None:
        """Close the breaker and forget its counts of the current state."""
        self._set(CLOSED)

    def _set(self, state: str) -> None:
        with self._lock:
            change = self._transition(state) if self._state != state else None
        if change is not None:
            self._announce(change, None)

    def _transition(self, state: str) -> _Change:
        """Enter ``state``; the caller holds the lock and announces the change after it."""
        change = _Change(self._state, state)
        self._state = state  # written before the generation: see _admit
        self._generation += 1
        self._consecutive = 0
        self._probes = 0
        self._probe_successes = 0
        if self._window is not None:
            self._window.clear()
        if state is OPEN:
            self._opened_at = self._clock()
        self._transitions[state].add()
        return change

    def _announce(self, change: _Change, cause: BaseException | None) -> None:
        add_span_event(
            names.BREAKER_TRANSITION_EVENT,
            {
                names.BREAKER_NAME: self.name,
                names.BREAKER_PREVIOUS_STATE: change.previous,
                names.BREAKER_STATE: change.state,
            },
        )
        if cause is not None and self._record:
            record_failure(
                cause,
                handled=False,
                source="breaker",
                attributes={names.BREAKER_NAME: self.name, names.BREAKER_STATE: change.state},
            )
        run_callbacks(
            self._callbacks, self, change.previous, change.state, what="breaker on_state_change"
        )

    # -- admission and outcomes ------------------------------------------------------------

    def _admit(self) -> int:
        """The generation the call runs in, or raise :class:`CircuitOpenError`."""
        generation = self._generation  # read before the state: a racing transition makes
        if self._state is CLOSED:  # this token stale, so the outcome is then ignored
            return generation
        change = None
        refused: tuple[str, float | None] | None = None
        with self._lock:
            state = self._state
            if state is OPEN:
                wait = self._opened_at + self.recovery_timeout - self._clock()
                if wait > 0:
                    refused = (OPEN, wait)
                else:
                    change = self._transition(HALF_OPEN)
                    state = HALF_OPEN
            if state is HALF_OPEN:
                if self._probes < self.half_open_max_calls:
                    self._probes += 1
                else:
                    refused = (HALF_OPEN, None)
            elif state is FORCED_OPEN:
                refused = (FORCED_OPEN, None)
            generation = self._generation
        if change is not None:
            self._announce(change, None)
        if refused is not None:
            raise self._refuse(*refused)
        return generation

    def _refuse(self, state: str, retry_after: float | None) -> CircuitOpenError:
        self._rejected[state].add()
        error = CircuitOpenError(self.name, state, retry_after)
        if self._record:
            record_failure(
                error,
                handled=False,
                source="breaker",
                fingerprint=self._fingerprint,
                attributes={names.BREAKER_NAME: self.name, names.BREAKER_STATE: state},
            )
        return error

    def _judge(self, exc: BaseException) -> BreakerOutcome:
        if not isinstance(exc, Exception) or isinstance(exc, self._excluded):
            return "excluded"
        try:
            return "failure" if self._counted(exc) else "success"
        except Exception:
            return "failure"

    def _settle(self, generation: int, outcome: BreakerOutcome, exc: BaseException | None) -> None:
        """Account for one call's outcome in the state it was admitted in."""
        self._outcomes[outcome].add()
        change = None
        with self._lock:
            if generation != self._generation:
                return  # the breaker moved on while the call ran
            state = self._state
            failed = outcome in {"failure", "slow"}
            if state is CLOSED:
                if outcome == "excluded":
                    return
                self._consecutive = self._consecutive + 1 if failed else 0
                now = self._clock()
                if self._window is not None:
                    self._window.add(now, failed)
                if failed and self._should_trip(now):
                    change = self._transition(OPEN)
            elif state is HALF_OPEN:
                self._probes -= 1
                if failed:
                    change = self._transition(OPEN)
                elif outcome == "success":
                    self._probe_successes += 1
                    if self._probe_successes >= self.success_threshold:
                        change = self._transition(CLOSED)
        if change is not None:
            self._announce(change, exc if change.state is OPEN else None)

    def _should_trip(self, now: float) -> bool:
        if self.failure_threshold is not None and self._consecutive >= self.failure_threshold:
            return True
        if self._window is None or self.failure_rate is None:
            return False
        calls, failures = self._window.totals(now)
        return calls >= self.minimum_calls and failures >= self.failure_rate * calls

    def _clear_consecutive(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation and self._state is CLOSED:
                self._consecutive = 0

    def _returned(self, generation: int, started: float) -> None:
        slow = self.slow_call_seconds
        if slow is not None and self._clock() - started >= slow:
            self._settle(generation, "slow", None)
        else:
            self._settle(generation, "success", None)

    # -- calling ---------------------------------------------------------------------------

    def call(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call ``func(*args, **kwargs)`` through the breaker."""
        generation = self._admit()
        started = self._clock() if self.slow_call_seconds is not None else 0.0
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._settle(generation, self._judge(exc), exc)
            raise
        self._returned(generation, started)
        return result

    async def acall(self, func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await ``func(*args, **kwargs)`` through the breaker."""
        generation = self._admit()
        started = self._clock() if self.slow_call_seconds is not None else 0.0
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            self._settle(generation, self._judge(exc), exc)
            raise
        self._returned(generation, started)
        return result

    def __call__(self, func: F) -> F:
        """Decorate a function or coroutine function (generators raise ``TypeError``)."""
        breaker = self
        success = self._outcomes["success"].add
        if callable_kind(func, "CircuitBreaker") == "async":

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await breaker.acall(func, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            generation = breaker._generation
            if breaker._state is not CLOSED or not breaker._fast:
                return breaker.call(func, *args, **kwargs)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                breaker._settle(generation, breaker._judge(exc), exc)
                raise
            success()
            if breaker._consecutive:
                breaker._clear_consecutive(generation)
            return result

        return wrapper  # type: ignore[return-value]

    # -- reporting -------------------------------------------------------------------------

    def status(self) -> BreakerStatus:
        """A consistent snapshot of the state and the counts."""
        state = self.state
        retry_after = self.retry_after
        with self._lock:
            rate = None
            if self._window is not None:
                calls, failures = self._window.totals(self._clock())
                rate = failures / calls if calls else 0.0
            consecutive = self._consecutive
        return BreakerStatus(
            name=self.name,
            state=state,
            consecutive_failures=consecutive,
            failure_rate=rate,
            retry_after=retry_after,
            calls={outcome: tally.value for outcome, tally in self._outcomes.items()},
            rejected=sum(tally.value for tally in self._rejected.values()),
            transitions={state: tally.value for state, tally in self._transitions.items()},
        )

    def health(self) -> report.ComponentHealth:
        """``unhealthy`` while open or forced open, ``degraded`` while half-open."""
        status = self.status()
        verdict: report.HealthStatus = "healthy"
        if status.state in (OPEN, FORCED_OPEN):
            verdict = "unhealthy"
        elif status.state == HALF_OPEN:
            verdict = "degraded"
        return report.ComponentHealth(
            "breaker",
            self.name,
            verdict,
            {
                "state": status.state,
                "consecutive_failures": status.consecutive_failures,
                "failure_rate": status.failure_rate,
                "retry_after": status.retry_after,
                "rejected": status.rejected,
            },
        )

    def observe(self, instrument: str) -> Iterable[metrics.Point]:
        """Points of ``instrument`` (see :data:`faultlens.resilience._metrics.INSTRUMENTS`)."""
        base: dict[str, AttributeValue] = {names.BREAKER_NAME: self.name}
        if instrument == "faultlens.breaker.status":
            current = self.state
            return [
                (1 if state == current else 0, {**base, names.BREAKER_STATE: state})
                for state in names.BREAKER_STATES
            ]
        if instrument == "faultlens.breaker.transitions":
            return _points(base, names.BREAKER_STATE, self._transitions)
        if instrument == "faultlens.breaker.rejected":
            return _points(base, names.BREAKER_STATE, self._rejected)
        if instrument == "faultlens.breaker.calls":
            return _points(base, names.BREAKER_OUTCOME, self._outcomes)
        return ()


def _points(
    base: dict[str, AttributeValue], key: str, tallies: dict[str, metrics.Tally]
) -> list[metrics.Point]:
    """One point per tally, labelled ``key=<tally name>`` on top of ``base``."""
    return [(tally.value, {**base, key: label}) for label, tally in tallies.items()]
