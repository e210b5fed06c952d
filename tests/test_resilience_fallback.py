"""Fallback: the result is degraded, and the span, the failure and the metrics say so."""

from __future__ import annotations

import asyncio

import pytest
from faultlens.resilience import Fallback, fallback
from resilience_support import Metrics, meter_fixture  # noqa: F401 (fixtures)


def cached(symbol: str) -> str:
    return f"cached:{symbol}"


def live(symbol: str) -> str:
    if symbol == "DOWN":
        raise ConnectionError("feed down")
    return f"live:{symbol}"


def test_primary_result_when_it_works() -> None:
    quotes = Fallback(cached, name="quotes", register=False)
    assert quotes.call(live, "AAPL") == "live:AAPL"
    assert quotes.counts() == {"primary": 1, "fallback": 0, "failed": 0}
    assert not quotes.degraded


def test_fallback_result_is_marked_degraded_on_span_and_failure(telemetry) -> None:
    quotes = Fallback(cached, name="quotes", register=False)
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("quote"):
        assert quotes.call(live, "DOWN") == "cached:DOWN"
    (span,) = [s for s in telemetry.finished() if s.name == "quote"]
    assert span.attributes["faultlens.degraded"] is True
    (event,) = [e for e in span.events if e.name == "faultlens.fallback"]
    assert dict(event.attributes or {}) == {
        "fallback.name": "quotes",
        "exception.type": "ConnectionError",
    }
    failure = telemetry.only_failure()
    assert failure["failure.handled"] is True
    assert failure["failure.source"] == "manual"
    assert failure["faultlens.degraded"] is True
    assert failure["fallback.name"] == "quotes"
    assert span.status.status_code.name == "UNSET"  # handled: not an error span
    assert quotes.degraded


def test_primary_success_clears_degraded() -> None:
    quotes = Fallback(cached, name="quotes", register=False)
    quotes.call(live, "DOWN")
    assert quotes.health().status == "degraded"
    quotes.call(live, "AAPL")
    assert quotes.health().status == "healthy"


def test_decorator_form_records_source_decorator(telemetry) -> None:
    @fallback(cached)
    def quote(symbol: str) -> str:
        return live(symbol)

    assert quote("DOWN") == "cached:DOWN"
    assert quote.__name__ == "quote"
    assert telemetry.only_failure()["failure.source"] == "decorator"
    assert telemetry.only_failure()["fallback.name"] == f"{__name__}.cached"


def test_when_the_fallback_fails_too_its_error_escapes_chained(telemetry) -> None:
    def broken_cache(symbol: str) -> str:
        raise KeyError(symbol)

    quotes = Fallback(broken_cache, name="quotes", register=False)
    with pytest.raises(KeyError) as error:
        quotes.call(live, "DOWN")
    assert isinstance(error.value.__context__, ConnectionError)
    events = telemetry.failure_events()
    assert [(e["exception.type"], e["failure.handled"]) for e in events] == [
        ("ConnectionError", True),
        ("KeyError", False),
    ]
    assert quotes.counts() == {"primary": 0, "fallback": 1, "failed": 1}


def test_only_matching_exceptions_fall_back(telemetry) -> None:
    quotes = Fallback(cached, name="quotes", on=(TimeoutError,), register=False)
    with pytest.raises(ConnectionError):
        quotes.call(live, "DOWN")
    predicate = Fallback(cached, name="p", on=lambda exc: "feed" in str(exc), register=False)
    assert predicate.call(live, "DOWN") == "cached:DOWN"
    with pytest.raises(KeyboardInterrupt):
        predicate.call(lambda: (_ for _ in ()).throw(KeyboardInterrupt()))


def test_async_primary_with_sync_or_async_fallback() -> None:
    async def alive(symbol: str) -> str:
        await asyncio.sleep(0)
        return live(symbol)

    async def acached(symbol: str) -> str:
        return f"acached:{symbol}"

    async def scenario() -> None:
        assert await Fallback(cached, register=False).acall(alive, "DOWN") == "cached:DOWN"
        assert await Fallback(acached, register=False).acall(alive, "DOWN") == "acached:DOWN"
        decorated = fallback(acached)(alive)
        assert await decorated("DOWN") == "acached:DOWN"
        assert await decorated("AAPL") == "live:AAPL"

        async def abroken(symbol: str) -> str:
            raise KeyError(symbol)

        with pytest.raises(KeyError):
            await Fallback(abroken, register=False).acall(alive, "DOWN")

    asyncio.run(scenario())


def test_metrics(meter: Metrics) -> None:
    quotes = Fallback(cached, name="quotes", meter_provider=meter.provider, register=False)
    quotes.call(live, "AAPL")
    quotes.call(live, "DOWN")
    quotes.call(live, "DOWN")
    points = {a["fallback.outcome"]: v for a, v in meter.points("faultlens.fallback.calls")}
    assert points == {"primary": 1, "fallback": 2, "failed": 0}


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="fallback must be callable"):
        Fallback(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on must be exception types"):
        Fallback(cached, on=(1,))  # type: ignore[arg-type]
