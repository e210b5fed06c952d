"""Wire names of the resilience layer: span events, their attributes, metric attributes.

The metric instruments themselves are listed, with unit and attributes, in
:data:`faultlens.resilience._metrics.INSTRUMENTS`.
"""

from __future__ import annotations

from typing import Final, Literal

# Span events (not failures: a failure is always an ``exception`` event).
RETRY_EVENT: Final = "faultlens.retry"
FALLBACK_EVENT: Final = "faultlens.fallback"
BREAKER_TRANSITION_EVENT: Final = "faultlens.breaker.transition"
TRACKER_HALT_EVENT: Final = "faultlens.tracker.halt"
CHECKPOINT_SAVE_EVENT: Final = "faultlens.checkpoint.save"
CHECKPOINT_RESTORE_EVENT: Final = "faultlens.checkpoint.restore"
CHECKPOINT_CLEAR_EVENT: Final = "faultlens.checkpoint.clear"

# Attributes on those events, on recorded failures and on metric points.
RETRY_NAME: Final = "retry.name"
RETRY_ATTEMPT: Final = "retry.attempt"
RETRY_DELAY: Final = "retry.delay_s"
RETRY_OUTCOME: Final = "retry.outcome"
RETRY_ATTEMPTS: Final = "retry.attempts"
BREAKER_NAME: Final = "breaker.name"
BREAKER_STATE: Final = "breaker.state"
BREAKER_PREVIOUS_STATE: Final = "breaker.previous_state"
BREAKER_OUTCOME: Final = "breaker.outcome"
TRACKER_NAME: Final = "tracker.name"
TRACKER_CONSECUTIVE: Final = "tracker.consecutive_failures"
TRACKER_THRESHOLD: Final = "tracker.threshold"
TRACKER_REASON: Final = "tracker.halt_reason"
FALLBACK_NAME: Final = "fallback.name"
FALLBACK_OUTCOME: Final = "fallback.outcome"
CHECKPOINT_NAME: Final = "checkpoint.name"
CHECKPOINT_PATH: Final = "checkpoint.path"
CHECKPOINT_POSITION: Final = "checkpoint.position"
CHECKPOINT_SEQUENCE: Final = "checkpoint.sequence"
CHECKPOINT_FORCED: Final = "checkpoint.forced"
CHECKPOINT_FOUND: Final = "checkpoint.found"
CHECKPOINT_AGE: Final = "checkpoint.age_s"
CHECKPOINT_OUTCOME: Final = "checkpoint.outcome"
#: Span attribute set to true when a fallback produced the result.
DEGRADED: Final = "faultlens.degraded"

BreakerState = Literal["closed", "open", "half_open", "forced_open"]
BREAKER_STATES: Final[tuple[BreakerState, ...]] = ("closed", "open", "half_open", "forced_open")

RetryOutcome = Literal["success", "recovered", "exhausted", "deadline", "not_retried"]
RETRY_OUTCOMES: Final[tuple[RetryOutcome, ...]] = (
    "success",
    "recovered",
    "exhausted",
    "deadline",
    "not_retried",
)

BreakerOutcome = Literal["success", "failure", "slow", "excluded"]
BREAKER_OUTCOMES: Final[tuple[BreakerOutcome, ...]] = ("success", "failure", "slow", "excluded")

FallbackOutcome = Literal["primary", "fallback", "failed"]
FALLBACK_OUTCOMES: Final[tuple[FallbackOutcome, ...]] = ("primary", "fallback", "failed")

SaveOutcome = Literal["success", "failure"]
SAVE_OUTCOMES: Final[tuple[SaveOutcome, ...]] = ("success", "failure")

#: ``success``: a checkpoint was read back; ``empty``: there was none (the job starts
#: from the beginning); ``failure``: it could not be used (CheckpointError).
RestoreOutcome = Literal["success", "empty", "failure"]
RESTORE_OUTCOMES: Final[tuple[RestoreOutcome, ...]] = ("success", "empty", "failure")
