"""Retry: attempts, backoff, deadlines, what is retried, span events, one final failure."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from faultlens.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    HaltedError,
    Retry,
    RetryExhaustedError,
    constant,
    linear,
    permanent,
    retry,
    set_testing,
)
from faultlens.resilience._testing import clocks
from resilience_support import FakeClock, Metrics, clock_fixture, meter_fixture  # noqa: F401 (fixtures)


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``value``."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError, value="ok"):
        self.failures = failures
        self.error = error
        self.value = value
        self.calls = 0

    def __call__(self, *args: object) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"attempt {self.calls}")
        return self.value


def policy(clock: FakeClock, name: str = "fetch", **options: object) -> Retry:
    options.setdefault("backoff", constant(1))
    with clocks(monotonic=clock, sleep=clock.sleep, async_sleep=clock.async_sleep):
        return Retry(name, **options)  # type: ignore[arg-type]


def test_success_first_time_does_not_wait(clock: FakeClock) -> None:
    flaky = Flaky(0)
    assert policy(clock, attempts=3).call(flaky) == "ok"
    assert (flaky.calls, clock.sleeps) == (1, [])


def test_recovers_after_failures_with_backoff_delays(clock: FakeClock) -> None:
    flaky = Flaky(2)
    p = policy(clock, attempts=3, backoff=linear(0.5, step=1))
    assert p.call(flaky) == "ok"
    assert flaky.calls == 3
    assert clock.sleeps == [0.5, 1.5]
    assert p.counts() == {
        "success": 0,
        "recovered": 1,
        "exhausted": 0,
        "deadline": 0,
        "not_retried": 0,
        "retries": 2,
    }


def test_exhausted_reraises_the_last_exception_unchanged(clock: FakeClock) -> None:
    flaky = Flaky(10)
    with pytest.raises(ConnectionError, match="attempt 3"):
        policy(clock, attempts=3).call(flaky)
    assert flaky.calls == 3
    assert clock.sleeps == [1, 1]


def test_attempts_one_means_no_retry(clock: FakeClock) -> None:
    flaky = Flaky(1)
    with pytest.raises(ConnectionError):
        policy(clock, attempts=1).call(flaky)
    assert flaky.calls == 1


def test_deadline_stops_before_a_wait_that_would_pass_it(clock: FakeClock) -> None:
    flaky = Flaky(10)

    def slow_attempt() -> object:
        clock.advance(2)
        return flaky()

    p = policy(clock, attempts=100, deadline=7, backoff=constant(1))
    with pytest.raises(ConnectionError):
        p.call(slow_attempt)
    # elapsed 2: fail, 2 + 1 < 7 -> wait; 5: fail, 5 + 1 < 7 -> wait; 8: fail, 8 + 1 >= 7 -> stop
    assert flaky.calls == 3
    assert clock.sleeps == [1, 1]
    assert p.counts()["deadline"] == 1


def test_only_matching_exceptions_are_retried(clock: FakeClock) -> None:
    flaky = Flaky(1, error=ValueError)
    p = policy(clock, on=(ConnectionError, TimeoutError))
    with pytest.raises(ValueError):
        p.call(flaky)
    assert flaky.calls == 1
    assert p.counts()["not_retried"] == 1


def test_predicate_decides_what_is_retried(clock: FakeClock) -> None:
    p = policy(clock, on=lambda exc: "retry me" in str(exc))
    calls = []

    def work() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("retry me")
        if len(calls) == 2:
            raise RuntimeError("fatal")
        return "never"

    with pytest.raises(RuntimeError, match="fatal"):
        p.call(work)
    assert len(calls) == 2


def test_permanent_marks_are_never_retried(clock: FakeClock) -> None:
    class AccountClosed(Exception):
        __faultlens_permanent__ = True

    for error in (
        permanent(ConnectionError("marked instance")),
        AccountClosed("marked class"),
        CircuitOpenError("psp", "open", 1.0),
        HaltedError("signals", {}, "halted"),
    ):
        flaky = Flaky(1)
        flaky.error = lambda _message, error=error: error  # type: ignore[assignment]
        with pytest.raises(type(error)):
            policy(clock, attempts=5).call(flaky)
        assert flaky.calls == 1, error


def test_permanent_option_lists_types(clock: FakeClock) -> None:
    flaky = Flaky(3, error=PermissionError)
    with pytest.raises(PermissionError):
        policy(clock, permanent=(PermissionError,)).call(flaky)
    assert flaky.calls == 1


def test_retry_on_result(clock: FakeClock) -> None:
    answers = iter([None, None, 42])
    p = policy(clock, attempts=3, retry_on_result=lambda result: result is None)
    assert p.call(lambda: next(answers)) == 42
    assert clock.sleeps == [1, 1]


def test_retry_on_result_exhausted_raises(clock: FakeClock, telemetry) -> None:
    p = policy(clock, attempts=2, retry_on_result=lambda result: result == "pending")
    with pytest.raises(RetryExhaustedError) as error:
        p.call(lambda: "pending")
    assert (error.value.attempts, error.value.last_result) == (2, "pending")
    failure = telemetry.only_failure()
    assert failure["exception.type"] == "faultlens.resilience.errors.RetryExhaustedError"
    assert failure["retry.outcome"] == "exhausted"


def test_base_exceptions_pass_through_untouched(clock: FakeClock, telemetry) -> None:
    calls = []

    def interrupted() -> None:
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        policy(clock, attempts=3).call(interrupted)
    assert len(calls) == 1
    assert telemetry.failure_events() == []


def test_each_retry_is_a_span_event_and_the_final_failure_is_recorded_once(
    clock: FakeClock, telemetry
) -> None:
    flaky = Flaky(10)
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("op"), pytest.raises(ConnectionError):
        policy(clock, attempts=3, backoff=linear(0.25, step=0.25)).call(flaky)
    (span,) = [s for s in telemetry.finished() if s.name == "op"]
    retries = [dict(e.attributes or {}) for e in span.events if e.name == "faultlens.retry"]
    assert retries == [
        {
            "retry.name": "fetch",
            "retry.attempt": 1,
            "retry.delay_s": 0.25,
            "exception.type": "ConnectionError",
        },
        {
            "retry.name": "fetch",
            "retry.attempt": 2,
            "retry.delay_s": 0.5,
            "exception.type": "ConnectionError",
        },
    ]
    failure = telemetry.only_failure()
    assert failure["failure.source"] == "retry"
    assert failure["failure.handled"] is False
    assert failure["exception.message"] == "attempt 3"
    assert (failure["retry.name"], failure["retry.attempts"]) == ("fetch", 3)
    assert failure["retry.outcome"] == "exhausted"
    assert span.status.status_code.name == "ERROR"


def test_recovered_call_records_no_failure(clock: FakeClock, telemetry) -> None:
    assert policy(clock, attempts=3).call(Flaky(2)) == "ok"
    assert telemetry.failure_events() == []


def test_breaker_inside_retry_records_the_refusal_once(clock: FakeClock, telemetry) -> None:
    with clocks(monotonic=clock):
        b = CircuitBreaker("psp", failure_threshold=1, register=False)
    flaky = Flaky(10)
    guarded = policy(clock, attempts=5)(b(flaky))
    with pytest.raises(CircuitOpenError):
        guarded()
    assert flaky.calls == 1  # the refusal is permanent: no retry hammers an open breaker
    sources = [(e["exception.type"], e["failure.source"]) for e in telemetry.failure_events()]
    assert sources == [
        ("ConnectionError", "breaker"),
        ("faultlens.resilience.errors.CircuitOpenError", "breaker"),
    ]


def test_decorator_forms_and_names(clock: FakeClock) -> None:
    @retry
    def plain() -> str:
        return "plain"

    @retry(attempts=2, backoff=constant(0))
    def configured(x: int) -> int:
        return x + 1

    assert plain() == "plain"
    assert configured(1) == 2
    assert configured.__name__ == "configured"

    named = Retry("shared")
    assert named(lambda: 1)() == 1
    unnamed = Retry()
    assert unnamed.name == "retry"

    def target() -> None:
        pass

    assert unnamed.named("x").name == "x"
    assert Retry(backoff=constant(0))(target) is not target


def test_decorated_function_recovers(clock: FakeClock) -> None:
    flaky = Flaky(1)
    p = policy(clock, attempts=2)
    decorated = p(flaky)
    assert decorated() == "ok"
    assert p.counts()["recovered"] == 1
    with_deadline = policy(clock, attempts=2, deadline=100)(Flaky(1))
    assert with_deadline() == "ok"


def test_async_retry_recovers_and_exhausts(clock: FakeClock) -> None:
    flaky = Flaky(2)

    async def fetch() -> object:
        return flaky()

    p = policy(clock, attempts=3)
    assert asyncio.run(p.acall(fetch)) == "ok"
    assert clock.sleeps == [1, 1]

    decorated = policy(clock, attempts=2)(fetch)
    flaky.calls, flaky.failures = 0, 5
    with pytest.raises(ConnectionError):
        asyncio.run(decorated())
    assert flaky.calls == 2


def test_async_attempt_timeout_retries_a_hung_attempt(clock: FakeClock) -> None:
    calls = []

    async def sometimes_hangs() -> str:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.Event().wait()  # never set: only the timeout ends it
        return "ok"

    p = policy(clock, attempts=2, attempt_timeout=0.01)
    assert asyncio.run(p.acall(sometimes_hangs)) == "ok"
    assert len(calls) == 2

    async def always_hangs() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError, match=r"attempt of retry 'fetch' timed out after 0\.01 s"):
        asyncio.run(policy(clock, attempts=2, attempt_timeout=0.01).acall(always_hangs))


def test_attempt_timeout_is_refused_for_sync_functions(clock: FakeClock) -> None:
    p = Retry("sync", attempt_timeout=1)
    with pytest.raises(ValueError, match="coroutine functions only"):
        p(lambda: None)
    with pytest.raises(ValueError, match="coroutine functions only"):
        p.call(lambda: None)


def test_attempt_state_is_per_call_across_threads() -> None:
    p = Retry("threads", attempts=3, backoff=constant(0))
    barrier = threading.Barrier(8)
    results: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        flaky = Flaky(2)  # each call needs exactly its own 3 attempts
        barrier.wait()
        try:
            results.append(p.call(flaky))
        except BaseException as exc:  # pragma: no cover - a failure shows in the assert
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert results == ["ok"] * 8
    assert p.counts()["recovered"] == 8
    assert p.counts()["retries"] == 16


def test_attempt_state_is_per_call_across_tasks() -> None:
    p = Retry("tasks", attempts=3, backoff=constant(0))

    async def scenario() -> list[object]:
        async def one() -> object:
            flaky = Flaky(2)

            async def attempt() -> object:
                await asyncio.sleep(0)
                return flaky()

            return await p.acall(attempt)

        return await asyncio.gather(*(one() for _ in range(20)))

    assert asyncio.run(scenario()) == ["ok"] * 20
    assert p.counts()["retries"] == 40


def test_metrics(meter: Metrics, clock: FakeClock) -> None:
    p = policy(clock, "quotes", attempts=3, backoff=constant(0), meter_provider=meter.provider)
    p.call(Flaky(0))
    p.call(Flaky(0))
    p.call(Flaky(1))
    with pytest.raises(ConnectionError):
        p.call(Flaky(5))
    with pytest.raises(ValueError):
        p.call(lambda: (_ for _ in ()).throw(permanent(ValueError("no"))))
    calls = {attrs["retry.outcome"]: v for attrs, v in meter.points("faultlens.retry.calls")}
    assert calls == {"success": 2, "recovered": 1, "exhausted": 1, "deadline": 0, "not_retried": 1}
    assert meter.value("faultlens.retry.attempts", **{"retry.name": "quotes"}) == 1 + 1 + 2 + 3 + 1


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"attempts": 0}, "attempts must be >= 1"),
        ({"attempts": -3}, "attempts must be >= 1"),
        ({"attempts": 1.5}, "attempts must be an integer"),
        ({"deadline": 0}, "deadline must be > 0"),
        ({"deadline": -1}, "deadline must be >= 0"),
        ({"attempt_timeout": 0}, "attempt_timeout must be > 0"),
        ({"backoff": 3}, "backoff must have a delay(retry) method"),
        ({"on": 3}, "on must be exception types or a predicate"),
        ({"on": (ValueError, 3)}, "on must be exception types"),
        ({"permanent": "x"}, "permanent must be exception types"),
        ({"retry_on_result": 1}, "retry_on_result must be callable"),
    ],
)
def test_bad_configuration_raises_one_clear_value_error(options, problem) -> None:
    with pytest.raises(ValueError, match="invalid Retry") as error:
        Retry("bad", **options)
    assert problem in str(error.value)


def test_generators_are_refused() -> None:
    def numbers() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        retry(numbers)


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTLENS_RETRY_ATTEMPTS", "5")
    monkeypatch.setenv("FAULTLENS_RETRY_INITIAL_DELAY", "0.5")
    monkeypatch.setenv("FAULTLENS_RETRY_MAX_DELAY", "2")
    p = Retry("env")
    assert p.attempts == 5
    assert p.backoff.initial == 0.5  # type: ignore[attr-defined]
    assert p.backoff.cap == 2  # type: ignore[attr-defined]


def test_policies_sharing_a_name_report_one_summed_point(meter: Metrics) -> None:
    first = Retry(backoff=constant(0), meter_provider=meter.provider)
    second = Retry(backoff=constant(0), meter_provider=meter.provider)
    first.call(Flaky(0))
    second.call(Flaky(0))
    second.call(Flaky(0))
    assert meter.value("faultlens.retry.calls", **{"retry.outcome": "success"}) == 3
    assert meter.value("faultlens.retry.attempts", **{"retry.name": "retry"}) == 3


# -- testing mode (stamina's set_testing) -------------------------------------------------


def test_testing_mode_makes_the_given_attempts_without_waiting(clock: FakeClock) -> None:
    p = policy(clock, attempts=5, backoff=constant(30))
    flaky = Flaky(10)
    with set_testing(True, attempts=2), pytest.raises(ConnectionError):
        p.call(flaky)
    assert (flaky.calls, clock.sleeps) == (2, [])
    assert p.counts()["exhausted"] == 1
    # Leaving the block puts the configured behaviour back.
    flaky = Flaky(10)
    with pytest.raises(ConnectionError):
        p.call(flaky)
    assert (flaky.calls, clock.sleeps) == (5, [30, 30, 30, 30])


def test_testing_mode_without_cap_may_make_more_attempts_than_configured(
    clock: FakeClock,
) -> None:
    p = policy(clock, attempts=2)
    flaky = Flaky(3)
    with set_testing(True, attempts=4):
        assert p.call(flaky) == "ok"
    assert flaky.calls == 4
    flaky = Flaky(10)
    with set_testing(True, attempts=4, cap=True), pytest.raises(ConnectionError):
        p.call(flaky)
    assert flaky.calls == 2


def test_testing_mode_applies_to_coroutines_and_a_deadline_counts_no_wait(
    clock: FakeClock,
) -> None:
    p = policy(clock, attempts=3, backoff=constant(100), deadline=5)
    flaky = Flaky(2)

    async def attempt() -> object:
        return flaky()

    with set_testing(True, attempts=3):
        assert asyncio.run(p.acall(attempt)) == "ok"
    assert (flaky.calls, clock.sleeps, p.counts()["deadline"]) == (3, [], 0)


def test_set_testing_applies_at_once_and_rejects_bad_attempts(clock: FakeClock) -> None:
    p = policy(clock, attempts=3)
    set_testing(True, attempts=1)
    try:
        flaky = Flaky(1)
        with pytest.raises(ConnectionError):
            p.call(flaky)
        assert flaky.calls == 1
    finally:
        set_testing(False)
    assert p.call(Flaky(1)) == "ok"
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="attempts must be an integer >= 1"):
            set_testing(True, attempts=bad)  # type: ignore[arg-type]


def test_no_test_hook_is_in_the_public_signature() -> None:
    import inspect

    assert not {"clock", "sleep", "async_sleep"} & set(inspect.signature(Retry).parameters)
