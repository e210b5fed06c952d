"""Fix verification and per-hook effectiveness.

When a fix hook exits 0, the fix is *pending* for the hook's verification
window. If its group occurs again after the fix finished (judged by the
occurrence's own time when the processor gives it, so a failure that happened
before the fix but arrived after it does not count), the fix *failed*; if the
window passes quietly, it is *verified*. A fix hook that itself fails (non-zero
exit, timeout, cannot start) is a failed fix at once. Each failed fix sends one
``fix_failed`` alert.

A hook's effectiveness is the verified share of its last ``window`` decided
fixes. Once it has ``min_samples`` of them, a share under ``warning`` raises a
``fix_ineffective`` alert at level ``warning``, under ``critical`` one at level
``critical``; each level alerts once until the share recovers above ``warning``
(going from critical back to warning alerts nothing). Decided fixes and the
raised levels are persisted, so effectiveness and its alerts carry over a
restart. Processors sharing a store read the fleet's fixes again whenever another
processor saves one (:meth:`FixVerifier.load`), so a recurrence seen by any processor
fails a fix applied by any other.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from faultlens_collector.actions.alerting import AlertBuilder
from faultlens_collector.actions.conditions import ConditionLatch
from faultlens_collector.actions.config import EffectivenessConfig, HookConfig
from faultlens_collector.actions.facts import FailureFacts
from faultlens_collector.actions.hookstats import HookStats
from faultlens_collector.actions.records import AuditRecord, FixRecord, HookJob
from faultlens_collector.actions.store import HookStateStore
from faultlens_collector.alerts.records import Alert

Level = Literal["unknown", "ok", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Effectiveness:
    """A hook's recent record: ``success_rate`` and ``mean_duration`` (seconds) over
    its last ``samples`` decided fixes (None without any), and ``pending`` fixes."""

    hook: str
    samples: int
    verified: int
    success_rate: float | None
    mean_duration: float | None
    pending: int
    level: Level


class FixVerifier:
    """Pending fixes by group, decided fixes by hook, and the alerts they raise."""

    def __init__(
        self,
        store: HookStateStore,
        config: EffectivenessConfig,
        hooks: Mapping[str, HookConfig],
        default_window: float,
        *,
        latch: ConditionLatch,
        alerts: AlertBuilder,
        emit: Callable[[Alert], None],
        stats: HookStats,
    ) -> None:
        self._store = store
        self.config = config
        self._hooks = hooks
        self._default_window = default_window
        self._latch = latch
        self._alerts = alerts
        self._emit = emit
        self._stats = stats
        self._lock = threading.Lock()
        self._pending: dict[str, list[FixRecord]] = {}
        self._samples: dict[str, deque[tuple[bool, float]]] = {}

    def load(self) -> None:
        """Read pending fixes and each hook's recent decided fixes from the store (again:
        what was read before is replaced — another processor sharing the store applied
        or decided fixes)."""
        with self._lock:
            self._pending = {}
            self._samples = {}
            for fix in self._store.pending_fixes():
                self._pending.setdefault(fix.fingerprint, []).append(fix)
            for hook in self._hooks:
                decided = self._store.decided_fixes(hook, self.config.window)
                samples = self._window(hook)
                for fix in reversed(decided):
                    samples.append((fix.result == "verified", fix.duration))

    def _window(self, hook: str) -> deque[tuple[bool, float]]:
        samples = self._samples.get(hook)
        if samples is None:
            samples = self._samples[hook] = deque(maxlen=self.config.window)
        return samples

    def fix_finished(self, job: HookJob, record: AuditRecord) -> None:
        """A fix hook ran: start verifying it, or record it failed."""
        if job.purpose not in ("fix", "manual") or record.outcome in ("dry_run", "dropped"):
            return
        hook = self._hooks.get(job.hook)
        window = (hook.verification_window if hook else None) or self._default_window
        finished = record.started_at + record.duration
        fix = FixRecord(
            id=record.id,
            hook=job.hook,
            rule=job.rule,
            fingerprint=job.facts.fingerprint,
            applied_at=finished,
            deadline=finished + window,
            duration=record.duration,
        )
        if record.outcome != "ok":
            self._decide(fix, False, f"hook {record.detail}", job.facts, finished)
            return
        self._store.save_fix(fix)
        with self._lock:
            self._pending.setdefault(fix.fingerprint, []).append(fix)

    def on_occurrence(self, facts: FailureFacts, now: float) -> None:
        """The group occurred again: fail its pending fixes that finished before."""
        if facts.fingerprint not in self._pending:  # the common case: no lock
            return
        when = facts.last_seen if facts.last_seen is not None else now
        with self._lock:
            fixes = self._pending.get(facts.fingerprint, [])
            failed = [fix for fix in fixes if fix.applied_at < when]
            if not failed:
                return
            remaining = [fix for fix in fixes if fix.applied_at >= when]
            if remaining:
                self._pending[facts.fingerprint] = remaining
            else:
                del self._pending[facts.fingerprint]
        for fix in failed:
            self._decide(fix, False, "the group recurred", facts, now)

    def tick(self, now: float) -> int:
        """Verify the fixes whose window has passed; returns how many."""
        with self._lock:
            due = [fix for fixes in self._pending.values() for fix in fixes if fix.deadline <= now]
            for fix in due:
                fixes = self._pending[fix.fingerprint]
                fixes.remove(fix)
                if not fixes:
                    del self._pending[fix.fingerprint]
        for fix in due:
            self._decide(fix, True, "no recurrence within the window", None, now)
        return len(due)

    def _decide(
        self, fix: FixRecord, verified: bool, reason: str, facts: FailureFacts | None, now: float
    ) -> None:
        decided = replace(
            fix, result="verified" if verified else "failed", decided_at=now, reason=reason
        )
        self._store.save_fix(decided)
        self._stats.decided(fix.hook, decided.result)
        with self._lock:
            self._window(fix.hook).append((verified, fix.duration))
        if not verified and facts is not None:
            self._emit(self._alerts.fix_failed(decided, facts, now))
        self._check_level(fix.hook, now)

    def _check_level(self, hook: str, now: float) -> None:
        report = self.report(hook)
        if report.level == "unknown":
            return
        warning, critical = f"fix_ineffective:{hook}:warning", f"fix_ineffective:{hook}:critical"
        if report.level == "ok":
            self._latch.clear([warning, critical])
            return
        assert report.success_rate is not None
        if report.level == "warning":
            self._latch.clear([critical])
            raised = self._latch.raise_(warning, now)
        else:
            self._latch.raise_(warning, now)  # critical implies warning: no second alert
            raised = self._latch.raise_(critical, now)
        if raised:
            self._emit(
                self._alerts.fix_ineffective(
                    hook, report.level, report.success_rate, report.samples, now
                )
            )

    def report(self, hook: str) -> Effectiveness:
        """The hook's current :class:`Effectiveness`."""
        with self._lock:
            samples = list(self._samples.get(hook, ()))
            pending = sum(1 for fixes in self._pending.values() for f in fixes if f.hook == hook)
        verified = sum(1 for ok, _ in samples if ok)
        rate = verified / len(samples) if samples else None
        mean = sum(duration for _, duration in samples) / len(samples) if samples else None
        level: Level = "unknown"
        if rate is not None and len(samples) >= self.config.min_samples:
            level = (
                "critical"
                if rate < self.config.critical
                else "warning"
                if rate < self.config.warning
                else "ok"
            )
        return Effectiveness(hook, len(samples), verified, rate, mean, pending, level)

    def effectiveness(self) -> dict[str, tuple[float | None, float | None]]:
        """hook -> (success rate, mean duration), for the metric callbacks."""
        with self._lock:
            hooks = list(self._samples)
        result = {}
        for hook in hooks:
            report = self.report(hook)
            if report.samples:
                result[hook] = (report.success_rate, report.mean_duration)
        return result

    def pending(self) -> list[FixRecord]:
        with self._lock:
            return [fix for fixes in self._pending.values() for fix in fixes]
