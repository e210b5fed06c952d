"""Resilience primitives that never hide a failure: retry, circuit breaker, fallback,
failure tracker with halts, checkpoints for long jobs, and a health report — sync
and asyncio, decorator and inline forms, state published as OpenTelemetry metrics
(``faultlens.breaker.*``, ``faultlens.retry.*``, ``faultlens.tracker.*``,
``faultlens.fallback.*``, ``faultlens.checkpoint.*``) and failures recorded
through :func:`faultlens.record_failure` with ``failure.source`` = ``retry`` /
``breaker`` / ``tracker`` / ``checkpoint``::

    from faultlens.resilience import CircuitBreaker, FailureTracker, fallback, retry

    psp = CircuitBreaker("psp", failure_threshold=5, recovery_timeout=30)

    @retry(attempts=3, deadline=5)
    @psp
    def charge(order): ...

:class:`RemoteHalts` follows the halts a faultlens processor holds (a fleet-wide
kill switch) and plugs into a tracker as a halt source. :class:`Checkpoint` saves
a long job's progress so that it resumes where it stopped after a crash.
:func:`verify_startup` checks at start-up that components have what others call on
them and that dependencies answer (``strict=True`` refuses to start). See docs/resilience.md
for every option, metric and environment variable.
"""

from __future__ import annotations

from faultlens.resilience._backoff import Backoff, constant, exponential, linear
from faultlens.resilience._breaker import BreakerStatus, CircuitBreaker
from faultlens.resilience._checkpoint import Checkpoint
from faultlens.resilience._fallback import Fallback, fallback
from faultlens.resilience._halts import Halt, HaltSource
from faultlens.resilience._remote_halts import RemoteHalts, RemoteHaltsStatus
from faultlens.resilience._report import ComponentHealth, HealthReport, health
from faultlens.resilience._retry import Retry, retry
from faultlens.resilience._settings import ResilienceDefaults, defaults
from faultlens.resilience._startup import (
    StartupReport,
    Violation,
    verify_startup,
    verify_startup_async,
)
from faultlens.resilience._testing import set_testing
from faultlens.resilience._tracker import FailureRecord, FailureTracker, KeyStatus, TrackerStatus
from faultlens.resilience.errors import (
    CheckpointError,
    CircuitOpenError,
    HaltedError,
    RetryExhaustedError,
    is_permanent,
    permanent,
)
from faultlens.resilience.startup import StartupVerificationError

__all__ = [
    "Backoff",
    "BreakerStatus",
    "Checkpoint",
    "CheckpointError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ComponentHealth",
    "FailureRecord",
    "FailureTracker",
    "Fallback",
    "Halt",
    "HaltSource",
    "HaltedError",
    "HealthReport",
    "KeyStatus",
    "RemoteHalts",
    "RemoteHaltsStatus",
    "ResilienceDefaults",
    "Retry",
    "RetryExhaustedError",
    "StartupReport",
    "StartupVerificationError",
    "TrackerStatus",
    "Violation",
    "constant",
    "defaults",
    "exponential",
    "fallback",
    "health",
    "is_permanent",
    "linear",
    "permanent",
    "retry",
    "set_testing",
    "verify_startup",
    "verify_startup_async",
]
