"""Storm control: repeats are aggregated, totals stay exact, memory stays bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import faultlens
import pytest
from concurrency import run_concurrently
from faultlens._recorder import storm
from faultlens._storm import AGGREGATE, FULL, SUPPRESS, StormControl


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _control(clock: FakeClock, **kwargs) -> StormControl:
    options = {"burst": 3, "refill_seconds": 10.0, "interval_seconds": 1.0, "max_keys": 100}
    options.update(kwargs)
    return StormControl(clock=clock, **options)


class TestStormControl:
    def test_burst_then_aggregate_once_per_interval(self) -> None:
        clock = FakeClock()
        control = _control(clock)
        assert [control.admit("a") for _ in range(3)] == [(FULL, 1)] * 3
        assert control.admit("a") == (SUPPRESS, 0)
        assert control.admit("a") == (SUPPRESS, 0)
        clock.now += 1.0
        assert control.admit("a") == (AGGREGATE, 3)  # two counted + this one
        assert control.admit("a") == (SUPPRESS, 0)

    def test_tokens_refill_over_time_and_carry_the_pending_count(self) -> None:
        clock = FakeClock()
        control = _control(clock)
        for _ in range(3):
            control.admit("a")
        control.admit("a")
        clock.now += 10.0
        assert control.admit("a") == (FULL, 2)
        assert control.admit("a") == (SUPPRESS, 0)

    def test_a_full_bucket_earns_no_credit_while_idle(self) -> None:
        clock = FakeClock()
        control = _control(clock)
        clock.now += 1000.0  # long idle before the first storm
        assert [control.admit("a")[0] for _ in range(4)] == [FULL, FULL, FULL, SUPPRESS]

    def test_fingerprints_are_independent(self) -> None:
        clock = FakeClock()
        control = _control(clock, burst=1)
        assert control.admit("a") == (FULL, 1)
        assert control.admit("b") == (FULL, 1)
        assert control.admit("a") == (SUPPRESS, 0)

    def test_take_due_hands_out_pending_counts_after_the_interval(self) -> None:
        clock = FakeClock()
        control = _control(clock, burst=1)
        control.admit("a")
        control.remember("a", ("sample",))
        for _ in range(5):
            control.admit("a")
        assert control.take_due() == []
        clock.now += 1.0
        (due,) = control.take_due()
        assert (due.fingerprint, due.count, due.sample) == ("a", 5, ("sample",))
        assert control.take_due(force=True) == []
        assert control.pending() == 0

    def test_force_hands_out_everything(self) -> None:
        clock = FakeClock()
        control = _control(clock, burst=1)
        control.admit("a")
        control.admit("a")
        assert [d.count for d in control.take_due(force=True)] == [1]

    def test_state_is_bounded_and_evicted_counts_are_not_lost(self) -> None:
        clock = FakeClock()
        control = _control(clock, burst=1, max_keys=10)
        for key in range(10):
            control.admit(f"k{key}")
            control.admit(f"k{key}")  # one pending each
        for key in range(10, 30):
            control.admit(f"k{key}")
        assert len(control) == 10
        assert control.pending() == 10
        assert sum(d.count for d in control.take_due(force=True)) == 10

    def test_recently_seen_fingerprints_survive_eviction(self) -> None:
        clock = FakeClock()
        control = _control(clock, burst=1, max_keys=2)
        control.admit("old")
        control.admit("hot")
        control.admit("old")  # touched again: now the most recent
        control.admit("new")  # evicts "hot"
        assert control.admit("old") == (SUPPRESS, 0)
        assert control.admit("hot") == (FULL, 1)

    @pytest.mark.parametrize(
        "kwargs",
        [{"burst": 0}, {"refill_seconds": 0}, {"interval_seconds": -1}, {"max_keys": 0}],
    )
    def test_bad_settings(self, kwargs) -> None:
        with pytest.raises(ValueError, match="faultlens: storm"):
            StormControl(**kwargs)


def _failing_parse(raw: str) -> int:
    return int(raw)


def _record_parse_failure(raw: str) -> None:
    try:
        _failing_parse(raw)
    except ValueError as exc:
        faultlens.record_failure(exc)


def test_storm_counts_are_exact_under_four_threads(telemetry) -> None:
    interval = 0.001  # short: the flusher races the four recording threads all along
    faultlens.configure(storm_interval_seconds=interval)
    per_thread = 2_500

    def worker(n: int) -> None:
        for i in range(per_thread):
            _record_parse_failure(f"{n}-{i}x")

    started = time.monotonic()
    run_concurrently(worker)
    faultlens.flush()
    elapsed = time.monotonic() - started
    events = telemetry.failure_events()
    assert {e["failure.fingerprint"] for e in events} == {events[0]["failure.fingerprint"]}
    assert sum(e["failure.count"] for e in events) == 4 * per_thread
    # Aggregated: past the burst, at most one event per interval (from a recording thread
    # or the flusher; twice that for slack). The run's own duration sets how many
    # intervals there were, so a slow, loaded machine does not fail a correct store.
    assert max(e["failure.count"] for e in events) > 1
    assert len(events) <= faultlens.configure().storm_burst + 2 * elapsed / interval + 10
    full = [e for e in events if "exception.stacktrace" in e]
    assert len(full) == faultlens.configure().storm_burst  # the rest carry no stack trace


def test_pending_counts_are_flushed_in_the_background(telemetry) -> None:
    faultlens.configure(storm_burst=1, storm_interval_seconds=0.05)
    for i in range(20):
        _record_parse_failure(f"{i}x")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(e["failure.count"] for e in telemetry.failure_events()) == 20:
            break
        time.sleep(0.02)
    events = telemetry.failure_events()
    assert sum(e["failure.count"] for e in events) == 20
    aggregate = events[-1]
    assert aggregate["_span"] == "faultlens.failure"
    assert aggregate["exception.type"] == "ValueError"
    assert aggregate["failure.source"] == "manual"
    assert "exception.stacktrace" not in aggregate


def test_aggregates_keep_the_callers_attributes(telemetry) -> None:
    faultlens.configure(storm_burst=1)

    def record() -> None:
        try:
            _failing_parse("x")
        except ValueError as exc:
            faultlens.record_failure(exc, attributes={"batch": "b1"})

    for _ in range(3):
        record()
    faultlens.flush()
    assert [e["batch"] for e in telemetry.failure_events()] == ["b1", "b1"]
    assert [e["failure.count"] for e in telemetry.failure_events()] == [1, 2]


def test_escaped_repeats_still_mark_their_spans_as_errors(telemetry) -> None:
    faultlens.configure(storm_burst=1)
    tracer = telemetry.tracer_provider.get_tracer("t")
    for _ in range(3):
        with tracer.start_as_current_span("request"):
            try:
                int("x")
            except ValueError as exc:  # it ended this request: escaped
                faultlens.record_failure(exc, handled=False)
    spans = [s for s in telemetry.finished() if s.name == "request"]
    assert [s.status.status_code.name for s in spans] == ["ERROR"] * 3
    assert [len(s.events) for s in spans] == [1, 0, 0]  # repeats are only counted


def test_a_boundary_leaves_the_status_of_spans_it_does_not_own_alone(telemetry) -> None:
    faultlens.configure(storm_burst=1)

    @faultlens.capture
    def parse(raw: str) -> int:
        return int(raw)

    tracer = telemetry.tracer_provider.get_tracer("t")
    for _ in range(3):
        with tracer.start_as_current_span("request"), pytest.raises(ValueError):
            parse("x")  # caught inside the span: the request may still succeed
    spans = [s for s in telemetry.finished() if s.name == "request"]
    assert [s.status.status_code.name for s in spans] == ["UNSET"] * 3
    assert [len(s.events) for s in spans] == [1, 0, 0]


def test_per_fingerprint_state_is_bounded(telemetry) -> None:
    faultlens.configure(max_fingerprints=50)
    for index in range(500):
        faultlens.record_failure(ValueError(str(index)), fingerprint=f"fp-{index}")
    assert len(storm()) == 50


MEMORY_PROBE = """
import gc, os, faultlens
from opentelemetry.trace import NoOpTracerProvider

def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

faultlens.configure(tracer_provider=NoOpTracerProvider())  # measure faultlens' state only
gc.collect()
before = rss()
for index in range(100_000):
    exc = ValueError(f"order {index} rejected by upstream billing-{index % 97}")
    faultlens.record_failure(exc, fingerprint=f"fp-{index}")
gc.collect()
print(rss() - before, len(faultlens._recorder.storm()))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_memory_for_100k_distinct_fingerprints_stays_under_50_mb() -> None:
    """Resident memory growth of a fresh process (benchmarks/bench_sdk.py traces it exactly)."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    grown, kept = map(int, result.stdout.split())
    assert grown < 50e6, f"{grown / 1e6:.1f} MB"
    assert kept == faultlens.configure().max_fingerprints
