"""Exceptions raised by the resilience layer, and the *permanent* mark.

Both refusal errors declare their category through the class-attribute
protocol :mod:`faultlens._classify` reads (``__faultlens_category__``), and are
marked permanent, so a :class:`~faultlens.resilience.Retry` never retries them:
retrying a refused call only hides that a dependency is down or a halt is in
force.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar, Final

from opentelemetry.util.types import AttributeValue

from faultlens._halt_keys import format_key

_PERMANENT: Final = "__faultlens_permanent__"


def permanent(exc: BaseException) -> BaseException:
    """Mark ``exc`` so that no retry policy retries it; returns ``exc``.

    ``raise permanent(ValueError("bad account"))``. A whole class is marked with
    the class attribute ``__faultlens_permanent__ = True``. Exceptions that do
    not accept attributes (rare builtins with ``__slots__``) cannot be marked;
    use the ``permanent=`` option of the retry policy for those.
    """
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, _PERMANENT, True)
    return exc


def is_permanent(exc: BaseException) -> bool:
    """True if ``exc`` or its class is marked permanent."""
    return getattr(exc, _PERMANENT, False) is True


def _wall(seconds_from_now: float | None) -> datetime | None:
    if seconds_from_now is None:
        return None
    return datetime.fromtimestamp(time.time() + seconds_from_now, tz=timezone.utc)


class CircuitOpenError(Exception):
    """A call refused by an open (or forced-open, or saturated half-open) circuit breaker.

    ``breaker`` is the breaker's name, ``state`` the state that refused the call
    (``open``, ``forced_open`` or ``half_open``), ``retry_after`` the seconds
    until the breaker lets a trial call through (None when it was forced open:
    it stays open until someone closes it) and ``retry_at`` that moment as an
    aware UTC datetime.
    """

    __faultlens_category__: ClassVar[str] = "dependency"
    __faultlens_permanent__: ClassVar[bool] = True

    def __init__(self, breaker: str, state: str, retry_after: float | None) -> None:
        self.breaker = breaker
        self.state = state
        self.retry_after = retry_after
        self.retry_at = _wall(retry_after)
        if state == "forced_open":
            when = "it stays open until it is reset"
        elif state == "half_open":
            when = "its trial calls are in flight; retry once they finish"
        else:
            when = f"it lets a trial call through in {retry_after or 0.0:.3g} s"
            if self.retry_at is not None:
                when += f" (at {self.retry_at.isoformat(timespec='seconds')})"
        super().__init__(f"circuit breaker {breaker!r} is {state}: call refused; {when}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.breaker, self.state, self.retry_after))


class HaltedError(Exception):
    """Work refused because a halt is in force for its key.

    ``tracker`` names who holds the halt (a tracker, or another halt source such
    as a fleet-wide guard), ``key`` the halted key (its attributes; empty means
    everything), ``reason`` why, ``since`` when it started (aware UTC datetime,
    or None if unknown). The halt stays until someone resumes it.
    """

    __faultlens_category__: ClassVar[str] = "halted"
    __faultlens_permanent__: ClassVar[bool] = True

    def __init__(
        self,
        tracker: str,
        key: Mapping[str, AttributeValue],
        reason: str,
        since: datetime | None = None,
    ) -> None:
        self.tracker = tracker
        self.key = dict(key)
        self.reason = reason
        self.since = since
        started = f" since {since.isoformat(timespec='seconds')}" if since else ""
        super().__init__(
            f"halted by {tracker!r} for {format_key(self.key)}{started}: {reason}; "
            "work is refused until the halt is resumed"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tracker, self.key, self.reason, self.since))


class RetryExhaustedError(Exception):
    """Every attempt returned a result the policy retries on (``retry_on_result``).

    ``policy`` names the retry policy, ``attempts`` is how many were made and
    ``last_result`` the last unacceptable result. Raised only for results:
    when the last attempt *raised*, that exception propagates unchanged.
    """

    __faultlens_category__: ClassVar[str] = "dependency"

    def __init__(self, policy: str, attempts: int, last_result: object) -> None:
        self.policy = policy
        self.attempts = attempts
        self.last_result = last_result
        super().__init__(
            f"retry {policy!r} gave up after {attempts} attempt(s): "
            f"the last result ({type(last_result).__name__}) was still not acceptable"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.policy, self.attempts, self.last_result))


class CheckpointError(Exception):
    """A checkpoint file that cannot be used, or a job another process is running.

    Raised by :meth:`~faultlens.resilience.Checkpoint.restore` instead of
    returning None — which would silently restart the job from zero — when the
    file is not valid JSON, is not a faultlens checkpoint, was written by a
    newer faultlens, belongs to another job, or cannot be read; and when
    another process holds the job's lock. ``job`` names the checkpoint, ``path``
    is the file, ``problem`` says what is wrong.
    """

    __faultlens_category__: ClassVar[str] = "io"

    def __init__(self, job: str, path: str, problem: str) -> None:
        self.job = job
        self.path = path
        self.problem = problem
        super().__init__(f"checkpoint {job!r} ({path}): {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job, self.path, self.problem))
