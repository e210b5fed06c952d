"""OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN: span events, log records, or both."""

from __future__ import annotations

import faultlens
import pytest
from faultlens._config import parse_signal_mode
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import StatusCode


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        (None, "span"),
        ("", "span"),
        ("logs", "logs"),
        ("logs/dup", "logs/dup"),
        ("http, logs", "logs"),
        ("LOGS/DUP", "logs/dup"),
        ("something-else", "span"),
    ],
)
def test_parse_signal_mode(raw, mode) -> None:
    assert parse_signal_mode(raw) == mode


def _fail_inside_span(telemetry) -> tuple[int, int]:
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("request") as span:
        ctx = span.get_span_context()

        @faultlens.capture
        def charge() -> None:
            raise TimeoutError("psp timed out")

        with pytest.raises(TimeoutError):
            charge()
    return ctx.trace_id, ctx.span_id


def test_default_is_span_events_only(telemetry) -> None:
    _fail_inside_span(telemetry)
    assert len(telemetry.failure_events()) == 1
    assert telemetry.log_records() == []


def test_logs_mode_emits_log_records_tied_to_the_span(monkeypatch, telemetry) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", "logs")
    faultlens.configure(reload_env=True)
    trace_id, span_id = _fail_inside_span(telemetry)
    assert telemetry.failure_events() == []
    (record,) = telemetry.log_records()
    assert record.event_name == "exception"
    assert record.trace_id == trace_id
    assert record.span_id == span_id
    assert record.severity_number == SeverityNumber.ERROR
    attrs = dict(record.attributes)
    assert attrs["exception.type"] == "TimeoutError"
    assert attrs["failure.category"] == "timeout"
    assert attrs["failure.handled"] is False
    assert attrs["failure.count"] == 1
    assert len(attrs["failure.fingerprint"]) == 16
    (span,) = telemetry.finished()
    # caught inside the span: its status is its owner's business, as in span-events mode
    assert span.status.status_code is StatusCode.UNSET


def test_logs_dup_mode_emits_both(monkeypatch, telemetry) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", "logs/dup")
    faultlens.configure(reload_env=True)
    _fail_inside_span(telemetry)
    (event,) = telemetry.failure_events()
    (record,) = telemetry.log_records()
    event.pop("_span")
    assert dict(record.attributes) == event


def test_logs_mode_without_a_span(telemetry) -> None:
    faultlens.configure(signal="logs")
    faultlens.record_failure(KeyError("k"))
    assert telemetry.finished() == ()
    (record,) = telemetry.log_records()
    assert record.trace_id in (0, None)
