"""Alerts: each kind, once per occurrence of its condition, filtered and redacted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions_support import FP, FP2, Clock, breaker_request, engine_with, facts, sqlite_action_store
from faultlens_collector.actions import ActionEngine, Alert
from faultlens_collector.actions.breakers import BreakerWatch, breaker_reports
from faultlens_collector.actions.conditions import ConditionLatch
from faultlens_collector.actions.config import RateSpikeConfig
from faultlens_collector.actions.rates import RateSpikeDetector
from faultlens_collector.actions.store import ActionStore, MemoryActionStore
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)


class Harness:
    def __init__(self, data: dict[str, Any], store: ActionStore | None = None) -> None:
        self.clock = Clock()
        self.engine: ActionEngine = engine_with(
            {"engine": {"tick_interval": "1h"}, **data}, store, clock=self.clock
        )
        self.feed = self.engine.subscribe_alerts()
        self.engine.start()

    def alerts(self) -> list[Alert]:
        found = []
        while (alert := self.feed.get(timeout=0)) is not None:
            found.append(alert)
        return found

    def kinds(self) -> list[str]:
        return [alert.kind for alert in self.alerts()]


@pytest.fixture
def harnesses() -> Iterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        harness.engine.stop(timeout=2)


def make(made: list[Harness], data: dict[str, Any] | None = None, **options: Any) -> Harness:
    harness = Harness(data or {}, **options)
    made.append(harness)
    return harness


def test_new_failure(harnesses: list[Harness]) -> None:
    h = make(harnesses)
    group = facts(severity="high", handled=True, count=4, attributes={"http.route": "/pay"})
    h.engine.on_group_updated(group, is_new=True, occurrences=4)
    h.engine.on_group_updated(group)  # an update of a known group: no alert
    (alert,) = h.alerts()
    assert alert.kind == "new_failure"
    assert alert.id == f"new_failure:{FP}"
    assert alert.severity == "high"
    assert alert.created_at == h.clock()
    assert alert.body == f"new failure: ValueError: invalid amount -3 in payments [{FP}]"
    assert dict(alert.attributes) == {
        "faultlens.alert.kind": "new_failure",
        "faultlens.alert.id": f"new_failure:{FP}",
        "failure.fingerprint": FP,
        "failure.category": "value",
        "failure.severity": "high",
        "failure.count": 4,
        "failure.handled": True,
        "exception.type": "ValueError",
        "exception.message": "invalid amount -3",
        "service.name": "payments",
        "span.name": "charge",
    }


def test_regression_and_rule_alerts_once_per_occurrence(harnesses: list[Harness]) -> None:
    h = make(harnesses, {"rules": [{"name": "payments", "service": "payments", "alert": True}]})
    h.engine.on_group_updated(facts(), is_new=True)
    assert h.kinds() == ["new_failure", "rule_match"]
    for _ in range(5):
        h.engine.on_group_updated(facts())
    h.engine.on_group_updated(facts(fingerprint=FP2))
    (other,) = h.alerts()
    assert (other.kind, other.attributes["failure.fingerprint"]) == ("rule_match", FP2)
    assert other.attributes["faultlens.rule.name"] == "payments"
    h.clock.advance(60)
    h.engine.on_group_updated(facts(), is_regression=True)
    assert h.kinds() == ["regression", "rule_match"]  # the rule alert re-armed
    h.engine.on_group_updated(facts())
    assert h.kinds() == []


def test_rule_alerts_are_not_repeated_after_a_restart(
    harnesses: list[Harness], tmp_path: Path
) -> None:
    data = {"rules": [{"name": "all", "severity": "low", "alert": True}]}
    path = tmp_path / "a.db"
    first = make(harnesses, data, store=sqlite_action_store(path))
    first.engine.on_group_updated(facts())
    assert first.kinds() == ["rule_match"]
    first.engine.stop()
    harnesses.remove(first)
    second = make(harnesses, data, store=sqlite_action_store(path))
    second.engine.on_group_updated(facts())
    assert second.kinds() == []


def test_kinds_and_minimum_severity_filter(harnesses: list[Harness]) -> None:
    h = make(harnesses, {"alerts": {"kinds": ["regression"], "min_severity": "high"}})
    h.engine.on_group_updated(facts(severity="critical"), is_new=True)  # kind not wanted
    h.engine.on_group_updated(facts(severity="low"), is_regression=True)  # too low
    h.engine.on_group_updated(facts(severity="high"), is_regression=True)
    assert h.kinds() == ["regression"]


def test_dismissed_groups_raise_no_rule_or_spike_alerts(harnesses: list[Harness]) -> None:
    h = make(harnesses, {"rules": [{"name": "all", "severity": "low", "alert": True}]})
    h.engine.on_group_updated(facts(status="dismissed"))
    assert h.kinds() == []


def test_failure_text_is_redacted(harnesses: list[Harness]) -> None:
    h = make(harnesses)
    h.engine.on_group_updated(facts(message="login failed password=hunter2"), is_new=True)
    (alert,) = h.alerts()
    assert alert.attributes["exception.message"] == "login failed password=[REDACTED]"
    assert "hunter2" not in alert.body


def test_internal_errors_never_reach_the_caller(harnesses: list[Harness]) -> None:
    h = make(harnesses, {"halts": [{"name": "h", "key": ["service.name"], "consecutive": 2}]})
    h.engine.on_group_updated(None)  # type: ignore[arg-type]
    h.engine.on_metrics("not a request")
    h.engine.on_success(None)  # type: ignore[arg-type]


# Rate spikes
SPIKE = RateSpikeConfig(bucket=60.0, factor=5.0, min_count=10, warmup=3, alpha=0.5)


def test_rate_spike_detector() -> None:
    detector = RateSpikeDetector(SPIKE)
    now = 6000.0
    for _ in range(3):  # three buckets of 2 failures: baseline 2/min
        assert detector.observe(FP, 2, now) is None
        now += 60
    # 10 in the fourth bucket: at least min_count and more than 5 x 2
    assert detector.observe(FP, 9, now) is None
    spike = detector.observe(FP, 2, now + 1)
    assert spike is not None
    assert (spike.bucket_start, spike.per_minute, spike.baseline_per_minute) == (now, 11.0, 2.0)
    assert detector.observe(FP, 50, now + 2) is None  # the same spike
    now += 60
    assert detector.observe(FP, 100, now) is None  # still spiking: not re-armed
    now += 60
    detector.observe(FP, 1, now)  # a calm bucket...
    now += 60
    assert detector.observe(FP, 400, now) is not None  # ...re-arms it


def test_rate_spike_needs_history_and_volume() -> None:
    detector = RateSpikeDetector(SPIKE)
    assert detector.observe(FP, 1000, 6000.0) is None  # brand new: that is new_failure's job
    quiet = RateSpikeDetector(SPIKE)
    now = 6000.0
    for _ in range(3):
        quiet.observe(FP, 1, now)
        now += 60
    assert quiet.observe(FP, 9, now) is None  # 9 > 5 x 1 but under min_count
    assert quiet.observe(FP, 1, now) is not None


def test_a_silent_group_decays_towards_zero() -> None:
    detector = RateSpikeDetector(SPIKE)
    now = 6000.0
    for _ in range(4):
        detector.observe(FP, 20, now)
        now += 60
    now += 60 * 30  # half an hour of silence
    spike = detector.observe(FP, 10, now)
    assert spike is not None
    assert spike.baseline_per_minute < 0.01


def test_rate_spike_memory_is_bounded() -> None:
    detector = RateSpikeDetector(RateSpikeConfig(max_groups=3))
    for index in range(10):
        detector.observe(f"{index:016x}", 1, 6000.0)
    assert len(detector) == 3


def test_rate_spike_alert(harnesses: list[Harness]) -> None:
    spike = {"bucket": "1m", "factor": 5.0, "min_count": 10, "warmup": 2, "alpha": 0.5}
    h = make(harnesses, {"alerts": {"rate_spike": spike}})
    h.clock.now = 6000.0
    h.engine.on_group_updated(facts(), occurrences=1)
    h.clock.advance(60)
    h.engine.on_group_updated(facts(), occurrences=1)
    h.clock.advance(60)
    h.engine.on_group_updated(facts(severity="low"), occurrences=12)
    (alert,) = h.alerts()
    assert alert.kind == "rate_spike"
    assert alert.id == f"rate_spike:{FP}:{int(h.clock() * 1000)}"
    assert alert.severity == "high"
    assert alert.attributes["faultlens.rate.per_minute"] == 12.0
    assert alert.attributes["faultlens.rate.baseline_per_minute"] == 1.0
    assert alert.attributes["failure.fingerprint"] == FP


# Circuit breakers, from metrics requests
def test_breaker_reports() -> None:
    reports = breaker_reports(breaker_request("open", 3))
    ((breaker, report),) = reports.items()
    assert (breaker.service, breaker.instance, breaker.breaker) == ("checkout", "i-1", "db")
    assert report.state == "open"
    assert report.opens == (3, 1, False)
    assert breaker_reports(ExportMetricsServiceRequest()) == {}


def watch(started_at_ns: int = 0) -> BreakerWatch:
    return BreakerWatch(ConditionLatch(MemoryActionStore()), started_at_ns)


def test_an_open_breaker_alerts_once_until_it_closes() -> None:
    w = watch()
    assert w.observe(breaker_request("closed", 0), 1.0) == []
    (opened,) = w.observe(breaker_request("open", 1), 2.0)
    assert (opened.breaker.breaker, opened.opens) == ("db", 1)
    assert w.observe(breaker_request("open", 1), 3.0) == []  # re-exported: the same opening
    assert w.observe(breaker_request("half_open", 1), 4.0) == []
    assert w.observe(breaker_request("open", 2), 5.0) == []  # re-opened after a probe: same
    assert w.observe(breaker_request("closed", 2), 6.0) == []
    (again,) = w.observe(breaker_request("open", 3), 7.0)  # a new occurrence
    assert again.opens == 1


def test_an_opening_shorter_than_the_export_interval_is_caught() -> None:
    w = watch()
    w.observe(breaker_request("closed", 4), 1.0)
    (opened,) = w.observe(breaker_request("closed", 6), 2.0)  # opened twice, closed again
    assert opened.opens == 2
    assert w.observe(breaker_request("closed", 6), 3.0) == []


def test_counter_resets_first_sightings_and_delta_temporality() -> None:
    w = watch(started_at_ns=100)
    assert w.observe(breaker_request("closed", 5, start=50), 1.0) == []  # older than us
    (after_restart,) = w.observe(breaker_request("closed", 1, start=200), 2.0)
    assert after_restart.opens == 1  # a new start time: a reset counter
    fresh = watch(started_at_ns=100)
    (seen,) = fresh.observe(breaker_request("closed", 2, start=150), 1.0)
    assert seen.opens == 2  # first seen, but it started after the watch did
    delta = watch()
    (d,) = delta.observe(breaker_request("closed", 1, delta=True), 1.0)
    assert d.opens == 1
    assert delta.observe(breaker_request("closed", 0, delta=True), 2.0) == []


def test_forced_open_is_no_alert() -> None:
    w = watch()
    assert w.observe(breaker_request("forced_open", 0), 1.0) == []
    assert w.observe(breaker_request(None, 0), 2.0) == []


def test_breaker_state_carries_over_a_restart(tmp_path: Path) -> None:
    store = sqlite_action_store(tmp_path / "a.db")
    assert len(BreakerWatch(ConditionLatch(store), 0).observe(breaker_request("open", 1), 1.0)) == 1
    again = BreakerWatch(ConditionLatch(store), 0)
    assert again.observe(breaker_request("open", 1), 2.0) == []


def test_breaker_open_alert_from_the_sdk_through_real_otlp(harnesses: list[Harness]) -> None:
    """The resilience layer's own metrics, exported by the official OTLP exporter."""
    from faultlens.resilience import CircuitBreaker
    from faultlens.resilience._testing import clocks
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from otlp_receiver import OtlpReceiver

    h = make(harnesses)
    now = [0.0]
    with OtlpReceiver() as receiver:
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=receiver.endpoint, insecure=True),
            export_interval_millis=3_600_000,
        )
        provider = MeterProvider(
            metric_readers=[reader], resource=Resource.create({"service.name": "checkout"})
        )
        with clocks(monotonic=lambda: now[0]):
            breaker = CircuitBreaker(
                "inventory-db",
                failure_threshold=2,
                recovery_timeout=30,
                record=False,
                meter_provider=provider,
                register=False,
            )

        def export_and_feed() -> list[Alert]:
            before = len(receiver.requests["metrics"])
            provider.force_flush()
            assert receiver.wait_for(lambda: len(receiver.requests["metrics"]) > before)
            for request in receiver.requests["metrics"][before:]:
                h.engine.on_metrics(request)
            return h.alerts()

        def fail() -> None:
            with pytest.raises(ConnectionError):
                breaker.call(_raise)

        assert export_and_feed() == []
        fail()
        fail()
        assert breaker.state == "open"
        (alert,) = export_and_feed()
        assert alert.kind == "breaker_open"
        assert alert.attributes["breaker.name"] == "inventory-db"
        assert alert.attributes["service.name"] == "checkout"
        assert alert.attributes["faultlens.breaker.opens"] == 1
        assert alert.body == "circuit breaker inventory-db in checkout opened"
        assert export_and_feed() == []  # still open: no second alert
        now[0] += 31
        breaker.call(lambda: None)  # half-open probe succeeds: closed
        assert breaker.state == "closed"
        assert export_and_feed() == []
        fail()
        fail()  # open again...
        now[0] += 31
        breaker.call(lambda: None)  # ...and closed before the next export
        (short,) = export_and_feed()
        assert short.attributes["faultlens.breaker.opens"] == 1
        provider.shutdown()


def _raise() -> None:
    raise ConnectionError("db down")
