"""One exception, one occurrence in the SDK: the identity table and the span hook.

However many layers record the same exception object — ``capture`` wrappers, the
logging capture, the excepthooks, and ``Span.record_exception`` calls of
``use_span``/``start_as_current_span`` and the contrib instrumentations — the
sum of ``failure.count`` over its events is 1, and it gets at most one event per
span. The exception itself is neither changed nor kept alive.
"""

from __future__ import annotations

import copy
import gc
import logging
import pickle
import weakref
from typing import Any

import faultlens
import pytest
from conftest import Telemetry
from faultlens import semconv
from faultlens._recorder import already_recorded
from faultlens._spanhook import span_hook_installed
from opentelemetry.sdk.trace import Span


class ShopError(Exception):
    pass


def _counts(telemetry: Telemetry) -> list[int]:
    return [int(event["failure.count"]) for event in telemetry.failure_events()]


@pytest.fixture
def hooked(telemetry: Telemetry) -> Telemetry:
    faultlens.install()
    assert span_hook_installed()
    return telemetry


def test_a_captured_exception_escaping_its_span_gets_no_second_event(hooked: Telemetry) -> None:
    tracer = hooked.tracer_provider.get_tracer("app")

    @faultlens.capture
    def charge() -> None:
        raise ShopError("card declined")

    with pytest.raises(ShopError), tracer.start_as_current_span("POST /pay"):
        charge()
    event = hooked.only_failure()
    assert event["failure.source"] == "decorator"
    assert event["failure.count"] == 1
    assert event["_span"] == "POST /pay"


def test_use_span_first_then_the_logging_capture_counts_once(hooked: Telemetry) -> None:
    tracer = hooked.tracer_provider.get_tracer("app")
    caught: list[BaseException] = []
    try:
        with tracer.start_as_current_span("GET /items"):
            {}["missing"]
    except KeyError as exc:
        caught.append(exc)
        logging.getLogger("app").exception("lookup failed")
    event = hooked.only_failure()
    assert event["failure.source"] == "auto"
    assert event["failure.handled"] is False
    assert event["failure.category"] == "lookup"
    assert len(event["failure.fingerprint"]) == 16
    assert "exception.escaped" in event  # the SDK's own attribute stays
    assert already_recorded(caught[0]) == event["failure.fingerprint"]


def test_an_exception_escaping_nested_spans_is_counted_once_and_shown_on_each(
    hooked: Telemetry,
) -> None:
    tracer = hooked.tracer_provider.get_tracer("app")

    @faultlens.capture
    def reserve() -> None:
        raise ShopError("out of stock")

    with (
        pytest.raises(ShopError),
        tracer.start_as_current_span("request"),
        tracer.start_as_current_span("reserve"),
    ):
        reserve()
    events = {event["_span"]: event for event in hooked.failure_events()}
    assert sorted(events) == ["request", "reserve"]
    assert events["reserve"]["failure.count"] == 1
    assert events["request"]["failure.count"] == 0  # a reference to the counted one
    for key in ("failure.fingerprint", "failure.category", "failure.source"):
        assert events["request"][key] == events["reserve"][key]
    assert "reserve" in events["request"]["exception.stacktrace"]
    assert sum(_counts(hooked)) == 1


def test_an_explicit_record_exception_is_a_handled_failure(hooked: Telemetry) -> None:
    tracer = hooked.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("job") as span:
        try:
            raise ShopError("retrying")
        except ShopError as exc:
            span.record_exception(exc, attributes={"job.id": 7})
            span.record_exception(exc)  # twice on one span: still one event
    event = hooked.only_failure()
    assert event["failure.handled"] is True
    assert event["job.id"] == 7
    assert hooked.finished()[0].status.is_ok


def test_every_exception_of_a_loop_counts_even_when_addresses_are_reused(
    hooked: Telemetry,
) -> None:
    """Each exception dies before the next is made, so ids repeat: none may be taken
    for the one before it — weakref-able, built-in with arguments, built-in without."""
    faultlens.configure(storm_burst=1000)
    tracer = hooked.tracer_provider.get_tracer("app")
    for make in (ShopError, lambda i: ValueError(f"bad {i}"), lambda _: ValueError()):
        for round_ in range(50):
            try:
                raise make(round_)
            except (ShopError, ValueError) as exc:
                faultlens.record_failure(exc)
            with pytest.raises((ShopError, ValueError)), tracer.start_as_current_span("each"):
                raise make(round_)
    assert sum(_counts(hooked)) == 300


def test_recording_neither_changes_nor_keeps_the_exception(hooked: Telemetry) -> None:
    class Resource:
        pass

    def fail(holder: list[Any]) -> None:
        local = Resource()  # lives in the failing frame, so in the traceback
        holder.append(weakref.ref(local))
        raise ValueError("disk full")

    def state(exc: BaseException) -> tuple[object, ...]:
        return (dict(vars(exc)), pickle.dumps(exc), repr(exc.__reduce__()), repr(copy.copy(exc)))

    refs: list[Any] = []
    seen: list[tuple[object, ...]] = []
    try:
        fail(refs)
    except ValueError as exc:
        seen.append(state(exc))
        faultlens.record_failure(exc)
        faultlens.record_failure(exc)
        seen.append(state(exc))
    assert seen[0] == seen[1]
    gc.collect()
    assert refs[0]() is None  # the frame and its locals were freed
    assert len(hooked.failure_events()) == 1


def test_a_storm_keeps_every_contrib_event_with_count_zero_past_the_burst(
    hooked: Telemetry,
) -> None:
    faultlens.configure(storm_burst=2, storm_refill_seconds=3600)
    tracer = hooked.tracer_provider.get_tracer("app")
    for _ in range(5):
        with pytest.raises(ShopError), tracer.start_as_current_span("hot"):
            raise ShopError("again")
    faultlens.flush()
    on_spans = [e for e in hooked.failure_events() if e["_span"] == "hot"]
    assert len(on_spans) == 5  # each span keeps the event its instrumentation wrote
    assert [e["failure.count"] for e in on_spans] == [1, 1, 0, 0, 0]
    assert sum(_counts(hooked)) == 5  # the aggregate stands for the other three


def test_with_failures_as_log_records_the_span_event_is_a_reference(hooked: Telemetry) -> None:
    faultlens.configure(signal="logs")
    tracer = hooked.tracer_provider.get_tracer("app")
    with pytest.raises(ShopError), tracer.start_as_current_span("job"):
        raise ShopError("as a log")
    event = hooked.only_failure()
    assert event["failure.count"] == 0
    (record,) = hooked.log_records()
    assert record.attributes[semconv.FAILURE_COUNT] == 1
    assert record.attributes[semconv.FAILURE_FINGERPRINT] == event["failure.fingerprint"]


def test_secrets_in_contrib_events_are_redacted(hooked: Telemetry) -> None:
    tracer = hooked.tracer_provider.get_tracer("app")
    with pytest.raises(ShopError), tracer.start_as_current_span("login"):
        raise ShopError("login failed password=hunter2")
    event = hooked.only_failure()
    assert "hunter2" not in event["exception.message"]
    assert "hunter2" not in event["exception.stacktrace"]


def test_disabled_or_uninstalled_the_sdk_writes_its_plain_event(hooked: Telemetry) -> None:
    tracer = hooked.tracer_provider.get_tracer("app")
    faultlens.uninstall()
    assert not span_hook_installed()
    assert Span.record_exception.__module__ == "opentelemetry.sdk.trace"
    with pytest.raises(ShopError), tracer.start_as_current_span("plain"):
        raise ShopError("plain")
    (span,) = hooked.finished()
    (event,) = span.events
    assert "failure.fingerprint" not in (event.attributes or {})
