"""Circuit breaker: every transition on a fake clock, what counts, concurrency, recording."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import threading
import time
from collections.abc import Iterator

import faultlens
import pytest
from faultlens.resilience import CircuitBreaker, CircuitOpenError, is_permanent
from faultlens.resilience._testing import clocks
from resilience_support import FakeClock, Metrics, clock_fixture, meter_fixture  # noqa: F401 (fixtures)


class Down(ConnectionError):
    pass


def fail() -> None:
    raise Down("refused")


def ok() -> str:
    return "ok"


def breaker(clock: FakeClock, **options: object) -> CircuitBreaker:
    if "failure_rate" not in options:
        options.setdefault("failure_threshold", 3)
    options.setdefault("recovery_timeout", 10)
    with clocks(monotonic=clock):
        return CircuitBreaker("dep", register=False, **options)  # type: ignore[arg-type]


def trip(b: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Down):
            b.call(fail)


def test_closed_to_open_after_n_consecutive_failures(clock: FakeClock) -> None:
    b = breaker(clock)
    trip(b, 2)
    assert b.state == "closed"
    trip(b, 1)
    assert b.state == "open"
    with pytest.raises(CircuitOpenError) as refused:
        b.call(ok)
    assert refused.value.breaker == "dep"
    assert refused.value.state == "open"
    assert refused.value.retry_after == pytest.approx(10)
    assert "'dep'" in str(refused.value)
    assert "10 s" in str(refused.value)


def test_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    b = breaker(clock)
    trip(b, 2)
    assert b.call(ok) == "ok"
    trip(b, 2)
    assert b.state == "closed"
    assert b.status().consecutive_failures == 2


def test_open_to_half_open_after_recovery_timeout(clock: FakeClock) -> None:
    b = breaker(clock)
    trip(b, 3)
    clock.advance(9.9)
    assert b.state == "open"
    assert b.retry_after == pytest.approx(0.1)
    clock.advance(0.1)
    assert b.state == "half_open"
    assert b.retry_after == 0.0


def test_half_open_to_closed_after_success_threshold(clock: FakeClock) -> None:
    b = breaker(clock, success_threshold=2, half_open_max_calls=2)
    trip(b, 3)
    clock.advance(10)
    assert b.call(ok) == "ok"
    assert b.state == "half_open"
    assert b.call(ok) == "ok"
    assert b.state == "closed"


def test_half_open_to_open_when_a_trial_fails(clock: FakeClock) -> None:
    b = breaker(clock)
    trip(b, 3)
    clock.advance(10)
    trip(b, 1)
    assert b.state == "open"
    assert b.retry_after == pytest.approx(10)  # a fresh recovery period


def test_half_open_limits_concurrent_trial_calls(clock: FakeClock) -> None:
    b = breaker(clock, half_open_max_calls=1)
    trip(b, 3)
    clock.advance(10)
    inside = []

    def trial() -> str:
        inside.append(1)
        with pytest.raises(CircuitOpenError) as refused:
            b.call(ok)  # a second call while the trial is in flight
        assert refused.value.state == "half_open"
        assert refused.value.retry_after is None
        return "trial"

    assert b.call(trial) == "trial"
    assert inside == [1]
    assert b.state == "closed"


def test_excluded_trial_releases_its_slot_without_deciding(clock: FakeClock) -> None:
    b = breaker(clock, exclude=(KeyError,))
    trip(b, 3)
    clock.advance(10)
    with pytest.raises(KeyError):
        b.call(lambda: {}["x"])
    assert b.state == "half_open"
    assert b.call(ok) == "ok"
    assert b.state == "closed"


def test_forced_open_refuses_until_reset(clock: FakeClock) -> None:
    b = breaker(clock)
    b.force_open()
    assert b.state == "forced_open"
    clock.advance(10_000)
    with pytest.raises(CircuitOpenError) as refused:
        b.call(ok)
    assert refused.value.state == "forced_open"
    assert refused.value.retry_after is None
    assert "until it is reset" in str(refused.value)
    assert b.retry_after is None
    b.reset()
    assert b.state == "closed"
    assert b.call(ok) == "ok"


def test_reset_from_open_closes(clock: FakeClock) -> None:
    b = breaker(clock)
    trip(b, 3)
    b.reset()
    assert b.state == "closed"
    assert b.call(ok) == "ok"


def test_failure_on_and_exclude_decide_what_counts(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1, failure_on=(ConnectionError,), exclude=(Down,))
    with pytest.raises(Down):  # excluded: counts as nothing
        b.call(fail)
    with pytest.raises(ValueError, match="bad input"):  # not a failure: the dependency answered
        b.call(lambda: (_ for _ in ()).throw(ValueError("bad input")))
    assert b.state == "closed"
    with pytest.raises(ConnectionError):
        b.call(lambda: (_ for _ in ()).throw(ConnectionError("down")))
    assert b.state == "open"
    assert b.status().calls == {"success": 1, "failure": 1, "slow": 0, "excluded": 1}


def test_failure_predicate(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1, failure_on=lambda exc: "5xx" in str(exc))
    with pytest.raises(RuntimeError):
        b.call(lambda: (_ for _ in ()).throw(RuntimeError("4xx")))
    assert b.state == "closed"
    with pytest.raises(RuntimeError):
        b.call(lambda: (_ for _ in ()).throw(RuntimeError("5xx")))
    assert b.state == "open"


def test_cancellation_counts_as_nothing(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1)
    with pytest.raises(KeyboardInterrupt):
        b.call(lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert b.state == "closed"


def test_slow_calls_count_as_failures(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=2, slow_call_seconds=1.0)

    def slow() -> str:
        clock.advance(1.5)
        return "late"

    assert b.call(slow) == "late"  # the result still comes back
    assert b.call(slow) == "late"
    assert b.state == "open"
    assert b.status().calls["slow"] == 2


def test_failure_rate_over_count_window(clock: FakeClock) -> None:
    b = breaker(clock, failure_rate=0.5, window=4, minimum_calls=4)
    assert b.failure_threshold is None  # only the rate trips it
    trip(b, 3)
    assert b.state == "closed"  # 3 calls < minimum_calls
    b.call(ok)
    assert b.state == "closed"  # the success never trips; the window is 3/4 failed now
    trip(b, 1)  # window: fail fail ok fail -> 3/4 >= 0.5
    assert b.state == "open"


def test_count_window_forgets_old_calls(clock: FakeClock) -> None:
    b = breaker(clock, failure_rate=0.75, window=4, minimum_calls=4)
    trip(b, 2)
    for _ in range(3):
        b.call(ok)
    trip(b, 1)  # window: ok ok ok fail -> 1/4
    assert b.state == "closed"
    assert b.status().failure_rate == pytest.approx(0.25)


def test_failure_rate_over_time_window(clock: FakeClock) -> None:
    b = breaker(clock, failure_rate=0.5, window_seconds=10, minimum_calls=2)
    trip(b, 1)
    clock.advance(11)  # that failure has left the window
    b.call(ok)
    trip(b, 1)  # 1 of 2 in the window -> 0.5
    assert b.state == "open"


def test_time_window_needs_minimum_calls(clock: FakeClock) -> None:
    b = breaker(clock, failure_rate=0.5, window_seconds=10, minimum_calls=3)
    trip(b, 1)
    clock.advance(11)
    trip(b, 1)
    assert b.state == "closed"  # only one call in the window
    trip(b, 2)
    assert b.state == "open"


def test_consecutive_and_rate_together(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=2, failure_rate=0.9, window=10, minimum_calls=10)
    trip(b, 2)
    assert b.state == "open"


def test_outcome_of_a_call_from_an_older_state_is_ignored(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1)

    def straddles() -> None:
        b.force_open()
        b.reset()  # two transitions while the call runs
        raise Down("late")

    with pytest.raises(Down):
        b.call(straddles)
    assert b.state == "closed"
    assert b.status().transitions["open"] == 0


def test_state_change_callbacks_run_for_each_transition(clock: FakeClock) -> None:
    seen: list[tuple[str, str]] = []

    def broken(*_: object) -> None:
        raise RuntimeError("callback bug")

    b = breaker(
        clock,
        failure_threshold=1,
        on_state_change=[broken, lambda br, old, new: seen.append((old, new))],
    )
    trip(b, 1)
    clock.advance(10)
    b.call(ok)
    b.force_open()
    b.reset()
    assert seen == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
        ("closed", "forced_open"),
        ("forced_open", "closed"),
    ]


def test_decorator_sync_and_async_and_methods(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1)

    class Client:
        @b
        def get(self, x: int) -> int:
            return x * 2

        @b
        async def aget(self, x: int) -> int:
            await asyncio.sleep(0)
            return x * 3

    client = Client()
    assert client.get(2) == 4
    assert asyncio.run(client.aget(2)) == 6
    assert Client.get.__name__ == "get"

    @b
    async def broken() -> None:
        raise Down("x")

    with pytest.raises(Down):
        asyncio.run(broken())
    with pytest.raises(CircuitOpenError):
        asyncio.run(client.aget(1))
    with pytest.raises(CircuitOpenError):
        client.get(1)


def test_decorator_fast_path_counts_and_clears(clock: FakeClock) -> None:
    b = breaker(clock)
    wrapped = b(lambda x: x)
    guarded_fail = b(fail)
    with pytest.raises(Down):
        guarded_fail()
    assert b.status().consecutive_failures == 1
    assert wrapped(5) == 5
    assert b.status().consecutive_failures == 0
    assert b.status().calls["success"] == 1


def test_decorator_on_half_open_takes_the_trial_path(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1)
    wrapped = b(ok)
    with pytest.raises(Down):
        b(fail)()
    clock.advance(10)
    assert wrapped() == "ok"
    assert b.state == "closed"


def test_generators_are_refused() -> None:
    b = CircuitBreaker("gen", register=False)

    def numbers() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        b(numbers)


def test_acall_trips_and_recovers(clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1)

    async def afail() -> None:
        raise Down("x")

    async def aok() -> str:
        return "ok"

    async def scenario() -> None:
        with pytest.raises(Down):
            await b.acall(afail)
        with pytest.raises(CircuitOpenError):
            await b.acall(aok)
        clock.advance(10)
        assert await b.acall(aok) == "ok"

    asyncio.run(scenario())
    assert b.state == "closed"


def test_circuit_open_error_is_dependency_permanent_and_picklable() -> None:
    error = CircuitOpenError("psp", "open", 3.0)
    assert faultlens.classify(error).category == "dependency"
    assert is_permanent(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.breaker, copy.state, copy.retry_after) == ("psp", "open", 3.0)
    assert str(copy) == str(error)


def test_two_threads_through_one_closed_breaker_run_concurrently() -> None:
    b = CircuitBreaker("concurrency", register=False)

    @b
    def work() -> None:
        time.sleep(0.05)

    def once() -> float:
        threads = [threading.Thread(target=work) for _ in range(2)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        return time.perf_counter() - start

    elapsed = min(once() for _ in range(3))  # the best of three: CI machines are noisy
    assert elapsed < 0.09, f"two 50 ms calls took {elapsed * 1000:.0f} ms: calls serialized"


def test_asyncio_tasks_run_concurrently_through_one_breaker() -> None:
    b = CircuitBreaker("async-concurrency", register=False)

    @b
    async def work() -> None:
        await asyncio.sleep(0.05)

    async def scenario() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(10)))
        return time.perf_counter() - start

    assert min(asyncio.run(scenario()) for _ in range(3)) < 0.09


def test_many_threads_keep_exact_counts() -> None:
    b = CircuitBreaker("counts", failure_threshold=10_000, register=False)
    guarded_ok = b(ok)
    guarded_fail = b(fail)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for i in range(2_000):
            if i % 10 == 0:
                with contextlib.suppress(Down):
                    guarded_fail()
            else:
                guarded_ok()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    calls = b.status().calls
    assert calls["success"] == 8 * 1_800
    assert calls["failure"] == 8 * 200


def test_trip_and_rejections_are_recorded_as_breaker_failures(telemetry, clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=2)
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("op"):
        trip(b, 2)
        for _ in range(2):
            with pytest.raises(CircuitOpenError):
                b.call(ok)
    events = telemetry.failure_events()
    assert [e["exception.type"] for e in events] == [
        f"{__name__}.Down",
        "faultlens.resilience.errors.CircuitOpenError",
        "faultlens.resilience.errors.CircuitOpenError",
    ]
    assert all(e["failure.source"] == "breaker" for e in events)
    assert all(e["breaker.name"] == "dep" for e in events)
    assert events[0]["breaker.state"] == "open"
    assert events[1]["failure.category"] == "dependency"
    assert events[1]["failure.fingerprint"] == events[2]["failure.fingerprint"]
    assert events[1]["failure.handled"] is False
    transitions = [
        dict(event.attributes or {})
        for span in telemetry.finished()
        for event in span.events
        if event.name == "faultlens.breaker.transition"
    ]
    assert transitions == [
        {"breaker.name": "dep", "breaker.previous_state": "closed", "breaker.state": "open"}
    ]


def test_record_false_records_nothing(telemetry, clock: FakeClock) -> None:
    b = breaker(clock, failure_threshold=1, record=False)
    trip(b, 1)
    with pytest.raises(CircuitOpenError):
        b.call(ok)
    assert telemetry.failure_events() == []


def test_status_metric_and_counters(meter: Metrics, clock: FakeClock) -> None:
    with clocks(monotonic=clock):
        b = CircuitBreaker(
            "psp",
            failure_threshold=2,
            recovery_timeout=5,
            meter_provider=meter.provider,
            register=False,
        )
    b.call(ok)
    trip(b, 2)
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            b.call(ok)
    status = {attrs["breaker.state"]: v for attrs, v in meter.points("faultlens.breaker.status")}
    assert status == {"closed": 0, "open": 1, "half_open": 0, "forced_open": 0}
    assert meter.value("faultlens.breaker.rejected", **{"breaker.state": "open"}) == 3
    assert meter.value("faultlens.breaker.transitions", **{"breaker.state": "open"}) == 1
    assert meter.value("faultlens.breaker.calls", **{"breaker.outcome": "success"}) == 1
    assert meter.value("faultlens.breaker.calls", **{"breaker.outcome": "failure"}) == 2
    # A short OPEN period between two collections still shows in the transition counter.
    clock.advance(5)
    b.call(ok)
    status = {attrs["breaker.state"]: v for attrs, v in meter.points("faultlens.breaker.status")}
    assert status == {"closed": 1, "open": 0, "half_open": 0, "forced_open": 0}
    assert meter.value("faultlens.breaker.transitions", **{"breaker.state": "half_open"}) == 1
    assert meter.value("faultlens.breaker.transitions", **{"breaker.state": "closed"}) == 1
    assert all(
        attrs["breaker.name"] == "psp" for attrs, _ in meter.points("faultlens.breaker.calls")
    )


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"failure_threshold": 0}, "failure_threshold must be >= 1"),
        ({"failure_threshold": -1}, "failure_threshold must be >= 1"),
        ({"failure_threshold": 2.5}, "failure_threshold must be an integer"),
        ({"failure_rate": 0}, "failure_rate must be in (0, 1]"),
        ({"failure_rate": 1.5}, "failure_rate must be in (0, 1]"),
        ({"window": 10}, "window and window_seconds need failure_rate"),
        ({"failure_rate": 0.5, "window": 0}, "window must be >= 1"),
        ({"failure_rate": 0.5, "window": 5, "window_seconds": 5}, "not both"),
        ({"failure_rate": 0.5, "window_seconds": 0}, "window_seconds must be > 0"),
        ({"minimum_calls": 0}, "minimum_calls must be >= 1"),
        ({"recovery_timeout": -1}, "recovery_timeout must be >= 0"),
        ({"half_open_max_calls": 0}, "half_open_max_calls must be >= 1"),
        ({"success_threshold": 0}, "success_threshold must be >= 1"),
        ({"slow_call_seconds": -0.1}, "slow_call_seconds must be >= 0"),
        ({"exclude": (42,)}, "exclude must be exception types"),
        ({"failure_on": "oops"}, "failure_on must be exception types or a predicate"),
    ],
)
def test_bad_configuration_raises_one_clear_value_error(options, problem) -> None:
    with pytest.raises(ValueError, match="invalid CircuitBreaker 'dep'") as error:
        CircuitBreaker("dep", register=False, **options)
    assert problem in str(error.value)


def test_every_problem_is_named_in_the_one_error() -> None:
    with pytest.raises(ValueError) as error:
        CircuitBreaker("", failure_threshold=0, recovery_timeout=-1, register=False)
    message = str(error.value)
    assert "name must be a non-empty string" in message
    assert "failure_threshold" in message
    assert "recovery_timeout" in message


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTLENS_BREAKER_FAILURE_THRESHOLD", "7")
    monkeypatch.setenv("FAULTLENS_BREAKER_RECOVERY_TIMEOUT", "2.5")
    monkeypatch.setenv("FAULTLENS_BREAKER_HALF_OPEN_MAX_CALLS", "3")
    monkeypatch.setenv("FAULTLENS_BREAKER_SUCCESS_THRESHOLD", "2")
    b = CircuitBreaker("env", register=False)
    assert (b.failure_threshold, b.recovery_timeout) == (7, 2.5)
    assert (b.half_open_max_calls, b.success_threshold) == (3, 2)
    code = CircuitBreaker("code", failure_threshold=1, register=False)
    assert code.failure_threshold == 1


def test_malformed_environment_value_falls_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FAULTLENS_BREAKER_FAILURE_THRESHOLD", "zero")
    b = CircuitBreaker("env", register=False)
    assert b.failure_threshold == 5
    assert "FAULTLENS_BREAKER_FAILURE_THRESHOLD" in caplog.text
