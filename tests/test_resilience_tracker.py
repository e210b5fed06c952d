"""Failure tracker: consecutive counts per key, halts, the guard, resume, persistence."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import faultlens
import pytest
from faultlens._halt_keys import make_key
from faultlens.resilience import FailureTracker, Halt, HaltedError, HaltSource, is_permanent
from faultlens.resilience._testing import clocks
from resilience_support import FakeClock, Metrics, clock_fixture, meter_fixture  # noqa: F401 (fixtures)

VWAP_AAPL = {"strategy": "VWAP", "symbol": "AAPL"}
VWAP_MSFT = {"strategy": "VWAP", "symbol": "MSFT"}


def tracker(clock: FakeClock, **options: object) -> FailureTracker:
    options.setdefault("threshold", 3)
    with clocks(monotonic=clock, wall=lambda: 1_700_000_000.0):
        return FailureTracker("signals", register=False, **options)  # type: ignore[arg-type]


def test_halts_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    t = tracker(clock)
    for expected in (1, 2):
        record = t.record_failure(ValueError("bad data"), VWAP_AAPL)
        assert (record.consecutive_failures, record.halted) == (expected, False)
    t.guard(VWAP_AAPL)  # not halted yet
    record = t.record_failure(ValueError("bad data"), VWAP_AAPL)
    assert record.halted
    with pytest.raises(HaltedError) as refused:
        t.guard(VWAP_AAPL)
    error = refused.value
    assert (error.tracker, error.key) == ("signals", VWAP_AAPL)
    assert "3 consecutive failures (threshold 3)" in error.reason
    assert error.since == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    assert "strategy=VWAP,symbol=AAPL" in str(error)
    assert "resumed" in str(error)


def test_success_resets_the_count(clock: FakeClock) -> None:
    t = tracker(clock)
    t.record_failure(ValueError("x"), VWAP_AAPL)
    t.record_failure(ValueError("x"), VWAP_AAPL)
    t.record_success(VWAP_AAPL)
    assert t.record_failure(ValueError("x"), VWAP_AAPL).consecutive_failures == 1
    assert t.halted(VWAP_AAPL) is None


def test_keys_are_counted_separately(clock: FakeClock) -> None:
    t = tracker(clock)
    for _ in range(3):
        t.record_failure(ValueError("x"), VWAP_AAPL)
    t.record_failure(ValueError("x"), VWAP_MSFT)
    t.guard(VWAP_MSFT)
    t.guard({"strategy": "VWAP"})  # a broader key is not stopped by a narrower halt
    with pytest.raises(HaltedError):
        t.guard({**VWAP_AAPL, "venue": "XNAS"})  # a narrower key is


def test_tracked_keys_are_bounded_and_halted_keys_are_kept(clock: FakeClock) -> None:
    t = tracker(clock, max_keys=10, record=False)
    for _ in range(3):
        t.record_failure(ValueError("x"), {"symbol": "HALTED"})
    t.record_failure(ValueError("x"), {"symbol": "FAILING"})
    for n in range(100):
        t.record_success({"symbol": f"S{n}"})
    keys = {dict(key.key)["symbol"]: key for key in t.status().keys}
    assert len(keys) <= 10
    assert "HALTED" in keys
    assert keys["FAILING"].consecutive_failures == 1  # idle keys go first
    with pytest.raises(HaltedError):
        t.guard({"symbol": "HALTED"})


def test_a_halt_on_a_broader_key_covers_narrower_ones(clock: FakeClock) -> None:
    t = tracker(clock)
    t.halt({"strategy": "VWAP"}, reason="model under review")
    with pytest.raises(HaltedError, match="model under review"):
        t.guard(VWAP_MSFT)
    t.guard({"strategy": "RSI", "symbol": "MSFT"})
    t.halt(reason="market closed")  # the empty key: everything
    with pytest.raises(HaltedError, match="market closed"):
        t.guard({"strategy": "RSI"})


def test_a_success_does_not_lift_a_halt_but_resume_does(clock: FakeClock) -> None:
    resumed: list[Halt] = []
    t = tracker(clock, on_resume=[resumed.append])
    for _ in range(3):
        t.record_failure(ValueError("x"), VWAP_AAPL)
    t.record_success(VWAP_AAPL)
    with pytest.raises(HaltedError):
        t.guard(VWAP_AAPL)
    assert t.resume(VWAP_AAPL) is True
    assert t.resume(VWAP_AAPL) is False
    t.guard(VWAP_AAPL)
    assert [h.attributes for h in resumed] == [VWAP_AAPL]
    # the count started afresh: one more failure does not halt again
    assert not t.record_failure(ValueError("x"), VWAP_AAPL).halted


def test_resume_all(clock: FakeClock) -> None:
    t = tracker(clock, threshold=1)
    t.record_failure(ValueError("x"), VWAP_AAPL)
    t.record_failure(ValueError("x"), VWAP_MSFT)
    t.halt()
    assert t.resume_all() == 3
    assert not t.status().halted


def test_reset_window_restarts_the_count(clock: FakeClock) -> None:
    t = tracker(clock, reset_window=60)
    t.record_failure(ValueError("x"), VWAP_AAPL)
    t.record_failure(ValueError("x"), VWAP_AAPL)
    clock.advance(61)
    assert t.record_failure(ValueError("x"), VWAP_AAPL).consecutive_failures == 1
    clock.advance(59)
    assert t.record_failure(ValueError("x"), VWAP_AAPL).consecutive_failures == 2


def test_halt_callbacks_get_the_halt_and_a_broken_one_is_contained(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    halts: list[Halt] = []

    def broken(halt: Halt) -> None:
        raise RuntimeError("pager down")

    t = tracker(clock, on_halt=[broken, halts.append])
    for _ in range(3):
        t.record_failure(ValueError("insufficient data points"), VWAP_AAPL)
    (halt,) = halts
    assert halt.attributes == VWAP_AAPL
    assert halt.consecutive_failures == 3
    assert halt.last_error == "ValueError: insufficient data points"
    assert "pager down" in caplog.text


def test_manual_halt_is_idempotent(clock: FakeClock) -> None:
    halts: list[Halt] = []
    t = tracker(clock, on_halt=[halts.append])
    first = t.halt(VWAP_AAPL, reason="maintenance")
    assert t.halt(VWAP_AAPL, reason="again") is first
    assert len(halts) == 1


def test_history_is_bounded_and_redacted(clock: FakeClock) -> None:
    t = tracker(clock, history=2, threshold=100)
    t.record_failure(ValueError("first"), VWAP_AAPL)
    t.record_failure(ValueError("password=hunter2"), VWAP_AAPL)
    t.record_failure(ValueError("x" * 2000), VWAP_MSFT)
    history = t.status().history
    assert len(history) == 2
    assert "hunter2" not in history[0].message
    assert len(history[1].message) <= 501
    assert history[1].key == VWAP_MSFT


def test_status_report(clock: FakeClock) -> None:
    t = tracker(clock)
    t.record_success(VWAP_MSFT)
    for _ in range(3):
        t.record_failure(ValueError("bad"), VWAP_AAPL)
    status = t.status()
    assert status.halted
    by_key = {tuple(sorted(k.key.items())): k for k in status.keys}
    aapl = by_key[tuple(sorted(VWAP_AAPL.items()))]
    assert (aapl.consecutive_failures, aapl.failures, aapl.halts, aapl.halted) == (3, 3, 1, True)
    msft = by_key[tuple(sorted(VWAP_MSFT.items()))]
    assert (msft.successes, msft.halted) == (1, False)
    data = json.loads(json.dumps(status.as_dict()))
    assert data["halts"][0]["key"] == VWAP_AAPL
    summary = status.summary()
    assert "HALTED strategy=VWAP,symbol=AAPL" in summary
    assert "3/3 consecutive" in summary


def test_failures_and_refusals_are_recorded_with_source_tracker(
    clock: FakeClock, telemetry
) -> None:
    t = tracker(clock, threshold=2)
    t.record_failure(ValueError("bad"), VWAP_AAPL)
    t.record_failure(KeyError("gone"), VWAP_AAPL)
    for _ in range(2):
        with pytest.raises(HaltedError):
            t.guard(VWAP_AAPL)
    events = telemetry.failure_events()
    assert [e["failure.source"] for e in events] == ["tracker"] * 4
    assert [e["tracker.consecutive_failures"] for e in events[:2]] == [1, 2]
    assert events[0]["symbol"] == "AAPL"
    assert events[0]["failure.handled"] is True
    assert events[1]["failure.severity"] == "high"  # the failure that started the halt
    assert events[2]["failure.category"] == "halted"
    assert events[2]["failure.handled"] is False
    assert events[2]["failure.fingerprint"] == events[3]["failure.fingerprint"]
    assert t.status().refused == 2


def test_halt_span_event(clock: FakeClock, telemetry) -> None:
    t = tracker(clock, threshold=1)
    with telemetry.tracer_provider.get_tracer("t").start_as_current_span("tick"):
        t.record_failure(ValueError("bad"), VWAP_AAPL)
    (span,) = [s for s in telemetry.finished() if s.name == "tick"]
    (event,) = [e for e in span.events if e.name == "faultlens.tracker.halt"]
    assert dict(event.attributes or {}) == {
        **VWAP_AAPL,
        "tracker.name": "signals",
        "tracker.halt_reason": "1 consecutive failures (threshold 1)",
        "tracker.consecutive_failures": 1,
    }


def test_track_decorator_and_context_manager(clock: FakeClock) -> None:
    t = tracker(clock, threshold=2)

    @t.track(key=lambda strategy, symbol: {"strategy": strategy, "symbol": symbol})
    def generate(strategy: str, symbol: str) -> str:
        if symbol == "AAPL":
            raise ValueError("no data")
        return f"{strategy}:{symbol}"

    assert generate("VWAP", "MSFT") == "VWAP:MSFT"
    for _ in range(2):
        with pytest.raises(ValueError):
            generate("VWAP", "AAPL")
    with pytest.raises(HaltedError):
        generate("VWAP", "AAPL")
    assert generate("VWAP", "MSFT") == "VWAP:MSFT"

    with t.tracking({"strategy": "RSI"}):
        pass
    with pytest.raises(RuntimeError), t.tracking({"strategy": "RSI"}):
        raise RuntimeError("x")
    assert t.status().history[-1].key == {"strategy": "RSI"}


def test_async_track(clock: FakeClock) -> None:
    t = tracker(clock, threshold=1)

    @t.track({"job": "sync"})
    async def job(fail: bool) -> str:
        await asyncio.sleep(0)
        if fail:
            raise ValueError("x")
        return "done"

    async def scenario() -> None:
        assert await job(False) == "done"
        with pytest.raises(ValueError):
            await job(True)
        with pytest.raises(HaltedError):
            await job(False)
        async with t.tracking({"job": "other"}):
            pass

    asyncio.run(scenario())


class FleetHalts:
    """A halt source like a fleet-wide guard: halts decided elsewhere."""

    def __init__(self) -> None:
        self.halts: dict[str, Halt] = {}

    def halt_for(self, key: Mapping[str, object]) -> Halt | None:
        return self.halts.get(str(key.get("strategy")))


def test_other_halt_sources_plug_into_the_guard(clock: FakeClock) -> None:
    fleet = FleetHalts()
    assert isinstance(fleet, HaltSource)
    t = tracker(clock, halt_sources=[fleet])
    t.guard(VWAP_AAPL)
    fleet.halts["VWAP"] = Halt(
        "fleet", make_key({"strategy": "VWAP"}), "halted on replica 3", datetime.now(timezone.utc)
    )
    with pytest.raises(HaltedError) as refused:
        t.guard(VWAP_AAPL)
    assert refused.value.tracker == "fleet"
    assert "replica 3" in str(refused.value)
    t.remove_halt_source(fleet)
    t.guard(VWAP_AAPL)
    t.add_halt_source(fleet)
    with pytest.raises(HaltedError):
        t.guard(VWAP_AAPL)
    with pytest.raises(TypeError):
        t.add_halt_source(object())  # type: ignore[arg-type]


def test_a_failing_halt_source_fails_closed(clock: FakeClock) -> None:
    class Broken:
        def halt_for(self, key: Mapping[str, object]) -> Halt | None:
            raise ConnectionError("processor unreachable")

    t = tracker(clock, halt_sources=[Broken()])
    with pytest.raises(HaltedError, match="the halt source failed"):
        t.guard(VWAP_AAPL)


def test_halted_error_is_category_halted_permanent_and_picklable() -> None:
    error = HaltedError("signals", VWAP_AAPL, "3 consecutive failures")
    assert faultlens.classify(error).category == "halted"
    assert is_permanent(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.tracker, copy.key, copy.reason) == ("signals", VWAP_AAPL, error.reason)


def test_concurrent_failures_halt_exactly_once(clock: FakeClock) -> None:
    halts: list[Halt] = []
    t = tracker(clock, threshold=50, on_halt=[halts.append])
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            t.record_failure(ValueError("x"), VWAP_AAPL)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(halts) == 1
    assert t.status().keys[0].failures == 200


def test_halts_persist_to_a_file_and_reload(clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "state" / "halts.json"
    t = tracker(clock, state_file=path)
    for _ in range(3):
        t.record_failure(ValueError("x"), VWAP_AAPL)
    data = json.loads(path.read_text())
    assert data["format"] == "faultlens.halts/1"
    assert data["halts"][0]["key"] == VWAP_AAPL
    again = tracker(clock, state_file=path)
    with pytest.raises(HaltedError):
        again.guard(VWAP_AAPL)
    again.resume(VWAP_AAPL)
    assert json.loads(path.read_text())["halts"] == []
    assert [p.name for p in path.parent.iterdir()] == ["halts.json"]  # no temporary left


def test_unusable_state_file_is_a_clear_error(clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "halts.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"halt state file .* is unusable"):
        tracker(clock, state_file=path)
    path.write_text(json.dumps({"format": "faultlens.halts/1", "tracker": "other", "halts": []}))
    with pytest.raises(ValueError, match="belongs to tracker 'other'"):
        tracker(clock, state_file=path)


def test_unwritable_state_file_keeps_the_halt_in_memory(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-yet"
    t = tracker(clock, threshold=1, state_file=blocker / "halts.json")
    blocker.write_text("")  # the directory the file should go to is now a file
    t.record_failure(ValueError("x"), VWAP_AAPL)
    with pytest.raises(HaltedError):
        t.guard(VWAP_AAPL)
    assert "could not write its halt state file" in caplog.text


RESTART_SCRIPT = textwrap.dedent(
    """
    import sys
    from faultlens.resilience import FailureTracker, HaltedError

    tracker = FailureTracker("signals", threshold=2, state_file=sys.argv[1])
    key = {"strategy": "VWAP", "symbol": "AAPL"}
    action = sys.argv[2]
    if action == "fail":
        for _ in range(2):
            tracker.record_failure(ValueError("bad data"), key)
    elif action == "resume":
        tracker.resume(key)
    try:
        tracker.guard(key)
    except HaltedError as error:
        print("HALTED", error.reason)
    else:
        print("RUNNING")
    """
)


@pytest.mark.slow
def test_a_restarted_process_stays_halted_until_resumed(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(RESTART_SCRIPT)
    state = tmp_path / "halts.json"
    env = {**os.environ, "FAULTLENS_DISABLED": "true"}

    def run(action: str) -> str:
        result = subprocess.run(
            [sys.executable, str(script), str(state), action],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=True,
        )
        return result.stdout.strip()

    assert run("fail") == "HALTED 2 consecutive failures (threshold 2)"
    assert run("start") == "HALTED 2 consecutive failures (threshold 2)"  # a new process
    assert run("resume") == "RUNNING"
    assert run("start") == "RUNNING"


def test_metrics(meter: Metrics, clock: FakeClock) -> None:
    with clocks(monotonic=clock):
        t = FailureTracker("signals", threshold=2, meter_provider=meter.provider, register=False)
    t.record_failure(ValueError("x"), VWAP_AAPL)
    t.record_failure(ValueError("x"), VWAP_MSFT)
    t.record_failure(ValueError("x"), VWAP_MSFT)
    with pytest.raises(HaltedError):
        t.guard(VWAP_MSFT)
    assert meter.value("faultlens.tracker.consecutive_failures", symbol="AAPL") == 1
    assert meter.value("faultlens.tracker.consecutive_failures", symbol="MSFT") == 2
    assert meter.value("faultlens.tracker.failures", symbol="MSFT") == 2
    assert meter.value("faultlens.tracker.halted", symbol="MSFT") == 1
    assert meter.value("faultlens.tracker.halted", symbol="AAPL") == 0
    assert meter.value("faultlens.tracker.halts", symbol="MSFT") == 1
    assert meter.value("faultlens.tracker.refused", **{"tracker.name": "signals"}) == 1
    attrs, _ = meter.points("faultlens.tracker.halted")[0]
    assert attrs["tracker.name"] == "signals"
    assert attrs["strategy"] == "VWAP"
    t.resume(VWAP_MSFT)
    assert meter.value("faultlens.tracker.halted", symbol="MSFT") == 0
    assert meter.value("faultlens.tracker.consecutive_failures", symbol="MSFT") == 0


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"threshold": 0}, "threshold must be >= 1"),
        ({"threshold": -2}, "threshold must be >= 1"),
        ({"reset_window": 0}, "reset_window must be > 0"),
        ({"history": -1}, "history must be >= 0"),
        ({"max_keys": 0}, "max_keys must be >= 1"),
        ({"halt_sources": [object()]}, "is not a HaltSource"),
    ],
)
def test_bad_configuration_raises_one_clear_value_error(options, problem) -> None:
    with pytest.raises(ValueError, match="invalid FailureTracker 'signals'") as error:
        FailureTracker("signals", register=False, **options)
    assert problem in str(error.value)


def test_malformed_keys_are_type_errors(clock: FakeClock) -> None:
    t = tracker(clock)
    with pytest.raises(TypeError, match="must be str, bool, int or float"):
        t.record_failure(ValueError("x"), {"symbol": ["AAPL"]})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="non-empty strings"):
        t.guard({"": "x"})


def test_threshold_and_history_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.setenv("FAULTLENS_TRACKER_THRESHOLD", "4")
    monkeypatch.setenv("FAULTLENS_TRACKER_HISTORY", "1")
    t = FailureTracker("env", register=False)
    assert t.threshold == 4
    t.record_failure(ValueError("a"))
    t.record_failure(ValueError("b"))
    assert [r.message for r in t.status().history] == ["b"]
