"""``faultlens.capture`` and ``faultlens.record_failure``: what lands on the span."""

from __future__ import annotations

import asyncio
import inspect

import faultlens
import pytest
from opentelemetry.trace import StatusCode


class Boom(Exception):
    pass


def test_escaping_exception_is_recorded_and_reraised_unchanged(telemetry) -> None:
    original = Boom("card declined")

    @faultlens.capture
    def charge() -> None:
        raise original

    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("request"), pytest.raises(Boom) as raised:
        charge()
    assert raised.value is original
    (span,) = telemetry.finished()
    (event,) = span.events
    attrs = dict(event.attributes or {})
    assert event.name == "exception"
    assert attrs["exception.type"] == f"{Boom.__module__}.Boom"
    assert attrs["exception.message"] == "card declined"
    assert "Traceback (most recent call last)" in attrs["exception.stacktrace"]
    assert attrs["failure.handled"] is False
    assert attrs["failure.source"] == "decorator"
    assert attrs["failure.count"] == 1
    assert attrs["failure.severity"] == "medium"  # escaped: at least medium
    # caught inside the span: faultlens leaves the status of a span it does not own alone
    assert span.status.status_code is StatusCode.UNSET


def test_a_span_the_exception_escapes_gets_error_from_its_owner(telemetry) -> None:
    @faultlens.capture
    def charge() -> None:
        raise Boom("card declined")

    tracer = telemetry.tracer_provider.get_tracer("t")
    with pytest.raises(Boom), tracer.start_as_current_span("request"):
        charge()
    (span,) = telemetry.finished()
    assert span.status.status_code is StatusCode.ERROR
    sources = [e.attributes.get("failure.source") for e in span.events if e.attributes]
    assert "decorator" in sources


def test_handled_failure_does_not_set_error_status(telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("request"):
        try:
            raise KeyError("sku")
        except KeyError as exc:
            fp = faultlens.record_failure(exc)
    (span,) = telemetry.finished()
    attrs = dict(span.events[0].attributes or {})
    assert attrs["failure.handled"] is True
    assert attrs["failure.source"] == "manual"
    assert attrs["failure.severity"] == "low"
    assert attrs["failure.fingerprint"] == fp
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})


def test_without_a_recording_span_the_failure_gets_its_own(telemetry) -> None:
    faultlens.record_failure(ValueError("nobody traced this"))
    (span,) = telemetry.finished()
    assert span.name == "faultlens.failure"
    assert span.events[0].name == "exception"


def test_escaped_failure_on_its_own_span_is_an_error(telemetry) -> None:
    with pytest.raises(ValueError), faultlens.capture():
        raise ValueError("x")
    (span,) = telemetry.finished()
    assert span.name == "faultlens.failure"
    assert span.status.status_code is StatusCode.ERROR


def test_options_override_classification(telemetry) -> None:
    @faultlens.capture(
        category="payments",
        severity="critical",
        fingerprint="00000000000000aa",
        attributes={"peer.service": "psp", "failure.count": 99},
    )
    def charge() -> None:
        raise ValueError("declined")

    with pytest.raises(ValueError):
        charge()
    event = telemetry.only_failure()
    assert event["failure.category"] == "payments"
    assert event["failure.severity"] == "critical"
    assert event["failure.fingerprint"] == "00000000000000aa"
    assert event["peer.service"] == "psp"
    assert event["failure.count"] == 1  # user attributes never replace faultlens' own


def test_invalid_options_fail_at_decoration_time() -> None:
    with pytest.raises(ValueError, match="invalid severity"):
        faultlens.capture(severity="urgent")
    with pytest.raises(ValueError, match="invalid category"):
        faultlens.capture(category="Not Valid")
    with pytest.raises(TypeError, match="expected a callable"):
        faultlens.capture(42)  # type: ignore[call-overload]


def test_record_failure_ignores_a_bad_override_with_a_warning(telemetry, caplog) -> None:
    faultlens.record_failure(KeyError("x"), severity="urgent")
    assert telemetry.only_failure()["failure.severity"] == "low"
    assert "invalid severity 'urgent'" in caplog.text


def test_success_path_returns_values_and_keeps_metadata(telemetry) -> None:
    @faultlens.capture
    def add(a: int, b: int = 2) -> int:
        """Adds."""
        return a + b

    assert add(1) == 3
    assert add.__name__ == "add"
    assert add.__doc__ == "Adds."
    assert str(inspect.signature(add)) == "(a: 'int', b: 'int' = 2) -> 'int'"
    assert telemetry.failure_events() == []


def test_async_functions(telemetry) -> None:
    @faultlens.capture
    async def fetch(fail: bool) -> str:
        await asyncio.sleep(0)
        if fail:
            raise TimeoutError("upstream")
        return "ok"

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(False)) == "ok"
    with pytest.raises(TimeoutError):
        asyncio.run(fetch(True))
    assert telemetry.only_failure()["failure.category"] == "timeout"


def test_generators_record_failures_raised_while_iterating(telemetry) -> None:
    @faultlens.capture
    def rows(n: int):
        received = yield "first"
        for i in range(n):
            received = yield f"{received}-{i}"
        raise OSError("disk went away")

    gen = rows(2)
    assert inspect.isgeneratorfunction(rows)
    assert next(gen) == "first"
    assert gen.send("a") == "a-0"
    assert gen.send("b") == "b-1"
    with pytest.raises(OSError, match="disk went away"):
        next(gen)
    assert telemetry.only_failure()["exception.message"] == "disk went away"


def test_closing_a_generator_is_not_a_failure(telemetry) -> None:
    @faultlens.capture
    def forever():
        while True:
            yield 1

    gen = forever()
    next(gen)
    gen.close()
    assert telemetry.failure_events() == []


def test_exceptions_thrown_into_a_generator_are_forwarded(telemetry) -> None:
    @faultlens.capture
    def resilient():
        while True:
            try:
                yield "value"
            except KeyError:
                yield "recovered"

    gen = resilient()
    next(gen)
    assert gen.throw(KeyError("x")) == "recovered"
    assert telemetry.failure_events() == []


def test_async_generators(telemetry) -> None:
    @faultlens.capture
    async def stream(n: int):
        for i in range(n):
            received = yield i
            if received == "stop":
                raise ConnectionResetError("peer reset")

    async def consume() -> list[object]:
        agen = stream(5)
        got = [await agen.__anext__(), await agen.asend(None)]
        try:
            await agen.asend("stop")
        except ConnectionResetError as exc:
            got.append(str(exc))
        finished = stream(2)
        got.extend([item async for item in finished])
        closing = stream(3)
        await closing.__anext__()
        await closing.aclose()
        return got

    assert inspect.isasyncgenfunction(stream)
    assert asyncio.run(consume()) == [0, 1, "peer reset", 0, 1]
    assert telemetry.only_failure()["failure.category"] == "connection"


def test_methods_static_and_class_methods(telemetry) -> None:
    class Service:
        factor = 10

        @faultlens.capture
        def method(self, x: int) -> int:
            return x * self.factor

        @staticmethod
        @faultlens.capture
        def static(x: int) -> int:
            return 1 // x

        @classmethod
        @faultlens.capture
        def klass(cls, x: int) -> int:
            return cls.factor // x

    service = Service()
    assert service.method(2) == 20
    assert Service.static(1) == 1
    assert Service.klass(2) == 5
    with pytest.raises(ZeroDivisionError):
        Service.static(0)
    with pytest.raises(ZeroDivisionError):
        service.klass(0)
    assert [e["exception.type"] for e in telemetry.failure_events()] == ["ZeroDivisionError"] * 2


def test_context_manager_forms(telemetry) -> None:
    with pytest.raises(KeyError), faultlens.capture(category="config"):
        {}["missing"]

    async def block() -> None:
        async with faultlens.capture(severity="high"):
            raise ValueError("async block")

    with pytest.raises(ValueError):
        asyncio.run(block())
    first, second = telemetry.failure_events()
    assert (first["failure.category"], first["failure.source"]) == ("config", "manual")
    assert (second["failure.severity"], second["failure.source"]) == ("high", "manual")


def test_the_same_exception_through_several_layers_is_recorded_once(telemetry) -> None:
    @faultlens.capture(attributes={"layer": "inner"})
    def inner() -> None:
        raise LookupError("not there")

    @faultlens.capture(attributes={"layer": "middle"})
    def middle() -> None:
        inner()

    def outer() -> None:
        with faultlens.capture(attributes={"layer": "outer"}):
            middle()

    with pytest.raises(LookupError) as raised:
        outer()
    # Caught, logged or recorded again later: still the same failure.
    assert faultlens.record_failure(raised.value) == telemetry.only_failure()["failure.fingerprint"]
    assert telemetry.only_failure()["layer"] == "inner"


def test_control_flow_exceptions_are_not_failures(telemetry) -> None:
    for exc in (StopIteration(), StopAsyncIteration(), GeneratorExit(), SystemExit(0)):
        assert faultlens.record_failure(exc) is None
    assert faultlens.record_failure(SystemExit(3)) is not None
    assert len(telemetry.failure_events()) == 1


def test_disabled_when_decorating_returns_the_function_itself(telemetry) -> None:
    faultlens.configure(disabled=True)

    def func() -> None:
        raise ValueError

    assert faultlens.capture(func) is func


def test_disabled_at_run_time_records_nothing(telemetry) -> None:
    @faultlens.capture
    def func() -> None:
        raise ValueError

    faultlens.configure(disabled=True)
    with pytest.raises(ValueError):
        func()
    assert faultlens.record_failure(KeyError()) is None
    assert telemetry.failure_events() == []


def test_disabled_from_the_environment(monkeypatch, telemetry) -> None:
    monkeypatch.setenv("FAULTLENS_DISABLED", "true")
    faultlens.configure(reload_env=True)
    assert faultlens.record_failure(KeyError()) is None
    monkeypatch.setenv("FAULTLENS_DISABLED", "maybe")
    assert faultlens.configure(reload_env=True).disabled is False


def test_record_failure_rejects_non_exceptions_quietly(telemetry) -> None:
    assert faultlens.record_failure("not an exception") is None  # type: ignore[arg-type]
    assert telemetry.failure_events() == []
