"""Fix verification and hook effectiveness (success rate, duration, alerts, metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions_support import (
    FP,
    FP2,
    Clock,
    engine_with,
    facts,
    python_hook,
    sqlite_action_store,
    wait_until,
)
from faultlens_collector.actions import ActionEngine, Alert, AuditRecord, HookJob, MemoryActionStore
from faultlens_collector.actions.alerting import AlertBuilder
from faultlens_collector.actions.broadcast import Subscription
from faultlens_collector.actions.conditions import ConditionLatch
from faultlens_collector.actions.config import EffectivenessConfig, HookConfig
from faultlens_collector.actions.hookstats import HookStats
from faultlens_collector.actions.records import new_id
from faultlens_collector.actions.store import ActionStore
from faultlens_collector.actions.verification import FixVerifier
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from resilience_support import Metrics


def drain(subscription: Subscription[Alert]) -> list[Alert]:
    alerts = []
    while (alert := subscription.get(timeout=0)) is not None:
        alerts.append(alert)
    return alerts


class Engine:
    """A started engine with one fix rule, a fake clock and collected alerts."""

    def __init__(self, code: str, store: ActionStore | None = None, **hook: Any) -> None:
        self.clock = Clock()
        reader = InMemoryMetricReader()
        self.metrics = Metrics(MeterProvider(metric_readers=[reader]), reader)
        self.engine: ActionEngine = engine_with(
            {
                "engine": {"verification_window": "10m", "tick_interval": "1h"},
                "hooks": {"fix": {"command": python_hook(code), "cooldown": 0, **hook}},
                "rules": [{"name": "values", "category": "value", "fix": ["fix"]}],
            },
            store,
            clock=self.clock,
            meter_provider=self.metrics.provider,
        )
        self.alerts = self.engine.subscribe_alerts()
        self.engine.start()

    def run_fix(self, fingerprint: str = FP) -> AuditRecord:
        before = len(self.engine.audit(limit=1000))
        self.engine.on_group_updated(facts(fingerprint=fingerprint))
        wait_until(lambda: len(self.engine.audit(limit=1000)) > before)
        wait_until(lambda: self.engine.stats.snapshot()[0])
        return self.engine.audit(limit=1)[0]

    def close(self) -> None:
        self.engine.stop(timeout=2)
        self.metrics.provider.shutdown()


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.close()


def make(engines: list[Engine], code: str = "print('fixed')", **options: Any) -> Engine:
    engine = Engine(code, **options)
    engines.append(engine)
    return engine


def test_a_quiet_window_verifies_the_fix(engines: list[Engine]) -> None:
    e = make(engines)
    record = e.run_fix()
    assert record.outcome == "ok"
    wait_until(e.engine.verifier.pending)
    (fix,) = e.engine.verifier.pending()
    assert (fix.hook, fix.rule, fix.fingerprint, fix.result) == ("fix", "values", FP, "pending")
    assert fix.deadline == pytest.approx(fix.applied_at + 600)
    e.clock.advance(599)
    e.engine.tick()
    assert e.engine.verifier.pending() == [fix]
    e.clock.advance(2)
    e.engine.tick()
    assert e.engine.verifier.pending() == []
    report = e.engine.effectiveness()["fix"]
    assert (report.samples, report.verified, report.success_rate) == (1, 1, 1.0)
    assert report.mean_duration == pytest.approx(record.duration)
    (decided,) = e.engine.store.decided_fixes("fix", 10)
    assert (decided.result, decided.reason) == ("verified", "no recurrence within the window")
    assert [a.kind for a in drain(e.alerts)] == []
    assert e.metrics.value("faultlens.hook.fixes", **{"fix.result": "verified"}) == 1
    assert e.metrics.value("faultlens.hook.success_rate", **{"hook.name": "fix"}) == 1.0
    assert e.metrics.value("faultlens.hook.duration", **{"hook.name": "fix"}) == pytest.approx(
        record.duration
    )
    assert e.metrics.value("faultlens.hook.executions", **{"hook.outcome": "ok"}) == 1


def test_a_recurrence_within_the_window_fails_the_fix(engines: list[Engine]) -> None:
    e = make(engines)
    e.run_fix()
    wait_until(e.engine.verifier.pending)
    e.clock.advance(30)
    e.engine.on_group_updated(facts(), occurrences=1)  # the group is back
    wait_until(lambda: e.engine.store.decided_fixes("fix", 10))
    (decided,) = e.engine.store.decided_fixes("fix", 10)
    assert (decided.result, decided.reason) == ("failed", "the group recurred")
    (alert,) = [a for a in drain(e.alerts) if a.kind == "fix_failed"]
    assert alert.attributes["faultlens.hook.name"] == "fix"
    assert alert.attributes["faultlens.rule.name"] == "values"
    assert alert.attributes["faultlens.fix.reason"] == "the group recurred"
    assert alert.attributes["failure.fingerprint"] == FP
    assert alert.attributes["service.name"] == "payments"
    assert alert.severity == "high"
    assert e.engine.effectiveness()["fix"].success_rate == 0.0
    # Nothing pending any more: the window passing changes nothing.
    e.clock.advance(3600)
    e.engine.tick()
    assert len(e.engine.store.decided_fixes("fix", 10)) == 1


def test_an_occurrence_from_before_the_fix_does_not_count(engines: list[Engine]) -> None:
    e = make(engines)
    e.run_fix()
    wait_until(e.engine.verifier.pending)
    (fix,) = e.engine.verifier.pending()
    e.clock.advance(5)
    e.engine.on_group_updated(facts(last_seen=fix.applied_at - 1))  # late arrival
    assert e.engine.verifier.pending() == [fix]
    e.engine.on_group_updated(facts(fingerprint=FP2))  # another group
    assert e.engine.verifier.pending() == [fix]
    e.engine.on_group_updated(facts(last_seen=fix.applied_at + 1))
    assert e.engine.verifier.pending() == []


def test_a_failing_hook_is_a_failed_fix(engines: list[Engine]) -> None:
    e = make(engines, "import sys; print('no luck'); sys.exit(2)")
    record = e.run_fix()
    assert record.outcome == "failed"
    wait_until(lambda: e.engine.store.decided_fixes("fix", 10))
    (decided,) = e.engine.store.decided_fixes("fix", 10)
    assert decided.reason == "hook exited 2"
    wait_until(lambda: e.engine.verifier.report("fix").samples == 1)
    (alert,) = drain(e.alerts)
    assert alert.kind == "fix_failed"
    assert alert.attributes["faultlens.fix.reason"] == "hook exited 2"


def test_verification_survives_a_restart(tmp_path: Path, engines: list[Engine]) -> None:
    store = sqlite_action_store(tmp_path / "a.db")
    first = make(engines, store=store)
    first.run_fix()
    wait_until(first.engine.verifier.pending)
    first.close()
    engines.remove(first)
    second = make(engines, store=store)
    second.clock.now = first.clock.now
    assert [fix.fingerprint for fix in second.engine.verifier.pending()] == [FP]
    second.engine.on_group_updated(facts(last_seen=second.clock.now + 1))
    assert second.engine.store.decided_fixes("fix", 10)[0].result == "failed"


def test_dry_runs_are_not_verified(engines: list[Engine]) -> None:
    e = make(engines, dry_run=True)
    assert e.run_fix().outcome == "dry_run"
    assert e.engine.verifier.pending() == []
    assert e.engine.effectiveness()["fix"].samples == 0


# Effectiveness thresholds, driven directly (no processes).
class Verifier:
    def __init__(self, store: ActionStore | None = None, **config: Any) -> None:
        self.store = store or MemoryActionStore()
        self.alerts: list[Alert] = []
        self.now = 1000.0
        self.verifier = FixVerifier(
            self.store,
            EffectivenessConfig(
                **{"warning": 0.7, "critical": 0.5, "min_samples": 4, "window": 6, **config}
            ),
            {"fix": HookConfig(name="fix", command=("true",))},
            60.0,
            latch=ConditionLatch(self.store),
            alerts=AlertBuilder(),
            emit=self.alerts.append,
            stats=HookStats(),
        )
        self.verifier.load()

    def outcome(self, verified: bool) -> None:
        fingerprint = new_id()
        job = HookJob(new_id(), "fix", "r", "fix", facts(fingerprint=fingerprint), self.now)
        record = AuditRecord(job.id, self.now, "fix", "r", "fix", fingerprint, "ok", 0, 0.25)
        self.verifier.fix_finished(job, record)
        self.now += 1
        if verified:
            self.now += 61
            self.verifier.tick(self.now)
        else:
            self.verifier.on_occurrence(facts(fingerprint=fingerprint), self.now)

    def levels(self) -> list[tuple[str, str]]:
        return [
            (
                alert.attributes["faultlens.alert.level"],
                f"{alert.attributes['faultlens.hook.success_rate']:.2f}",
            )
            for alert in self.alerts
            if alert.kind == "fix_ineffective"
        ]


def test_effectiveness_alerts_once_per_level() -> None:
    v = Verifier()
    for verified in [True, True, True, True, False]:  # 4/5 = 0.80: fine
        v.outcome(verified)
    assert v.levels() == []
    v.outcome(False)  # 4/6 = 0.67 < 0.70: warning
    assert v.levels() == [("warning", "0.67")]
    v.outcome(True)  # window 6: T T T F F T = 0.67, still warning: no new alert
    assert v.levels() == [("warning", "0.67")]
    v.outcome(False)  # T T F F T F = 0.50: still warning (not under 0.50)
    v.outcome(False)  # T F F T F F = 0.33: critical
    assert v.levels() == [("warning", "0.67"), ("critical", "0.33")]
    v.outcome(False)  # F F T F F F = 0.17: still critical
    v.outcome(True)
    v.outcome(True)
    v.outcome(True)  # F F F T T T = 0.50: back to warning, no alert
    assert len(v.levels()) == 2
    v.outcome(True)
    v.outcome(True)  # F T T T T T = 0.83: recovered
    v.outcome(False)
    v.outcome(False)  # T T T T F F... = 0.67: warning again, alerted again
    assert v.levels()[2:] == [("warning", "0.67")]
    critical = [a for a in v.alerts if a.attributes.get("faultlens.alert.level") == "critical"]
    assert critical[0].severity == "critical"
    assert critical[0].attributes["faultlens.hook.samples"] == 6


def test_no_judgement_before_min_samples() -> None:
    v = Verifier()
    for _ in range(3):
        v.outcome(False)
    assert v.levels() == []
    assert v.verifier.report("fix").level == "unknown"
    v.outcome(False)
    assert v.levels() == [("critical", "0.00")]  # straight to critical: one alert


def test_levels_and_samples_carry_over_a_restart(tmp_path: Path) -> None:
    store = sqlite_action_store(tmp_path / "a.db")
    v = Verifier(store)
    for verified in [True, True, False, False]:
        v.outcome(verified)
    assert v.levels() == [("warning", "0.50")]  # 0.50 is not under the critical 0.50
    again = Verifier(store)
    assert again.verifier.report("fix").samples == 4
    again.outcome(True)  # 3/5 = 0.60: the same warning as before the restart, not alerted again
    assert again.levels() == []
    again.outcome(False)  # 3/6 = 0.50 ... still warning
    again.outcome(False)  # 2/6 = 0.33: critical, a new occurrence
    assert again.levels() == [("critical", "0.33")]
