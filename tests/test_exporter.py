"""The ``faultlens`` traces exporter: only spans that carry failures reach the processor."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path

import faultlens
import pytest
from conftest import Telemetry
from faultlens_collector.exporter import FaultlensSpanExporter, carries_failure, parse_endpoint
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status, StatusCode
from otlp_receiver import OtlpReceiver, attributes

TESTS = Path(__file__).resolve().parent
FAILURE_SPANS = ["recorded", "escaped", "faultlens-handled"]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def dead_endpoint() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def mixed_spans(telemetry: Telemetry) -> Sequence[ReadableSpan]:
    """Six spans: three carry failures (exception events), three do not."""
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("healthy"):
        pass
    with tracer.start_as_current_span("cache-lookup") as span:
        span.add_event("cache.miss")
    with tracer.start_as_current_span("error-status-only") as span:
        span.set_status(Status(StatusCode.ERROR, "upstream said 503"))
    with tracer.start_as_current_span("recorded") as span:
        span.record_exception(ValueError("bad quantity"))
    with pytest.raises(KeyError), tracer.start_as_current_span("escaped"):
        raise KeyError("sku")
    with tracer.start_as_current_span("faultlens-handled"):
        faultlens.record_failure(TimeoutError("psp timed out"))
    return telemetry.finished()


def names(receiver: OtlpReceiver) -> list[str]:
    return [span.name for _, span in receiver.spans()]


# --- filtering ---------------------------------------------------------------------


def test_only_spans_with_exception_events_are_forwarded(
    telemetry: Telemetry, receiver: OtlpReceiver
) -> None:
    spans = mixed_spans(telemetry)
    assert [span.name for span in spans if carries_failure(span)] == FAILURE_SPANS
    exporter = FaultlensSpanExporter(endpoint=receiver.endpoint, environ={})
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert names(receiver) == FAILURE_SPANS
    _, forwarded = receiver.spans()[2]
    event = next(event for event in forwarded.events if event.name == "exception")
    event_attributes = attributes(event.attributes)
    assert event_attributes["exception.type"] == "TimeoutError"
    assert len(event_attributes["failure.fingerprint"]) == 16  # spans arrive unchanged


def test_a_batch_without_failures_makes_no_network_call(
    telemetry: Telemetry, receiver: OtlpReceiver
) -> None:
    quiet = [span for span in mixed_spans(telemetry) if not carries_failure(span)]
    live = FaultlensSpanExporter(endpoint=receiver.endpoint, environ={})
    dead = FaultlensSpanExporter(endpoint=dead_endpoint(), environ={}, timeout=5)
    try:
        assert live.export(quiet) is SpanExportResult.SUCCESS
        assert live.export([]) is SpanExportResult.SUCCESS
        started = time.perf_counter()
        assert dead.export(quiet) is SpanExportResult.SUCCESS  # nothing to send, nowhere to fail
        assert time.perf_counter() - started < 0.5
    finally:
        live.shutdown()
        dead.shutdown()
    assert receiver.requests["traces"] == []


# --- configuration ------------------------------------------------------------------


def test_headers_from_the_environment_arrive_as_metadata(
    telemetry: Telemetry, receiver: OtlpReceiver
) -> None:
    environ = {
        "FAULTLENS_ENDPOINT": f"http://{receiver.endpoint}",
        "FAULTLENS_HEADERS": "Authorization=Bearer%20s3cr%3Dt, x-tenant = shop",
    }
    exporter = FaultlensSpanExporter(environ=environ)
    try:
        assert exporter.export(mixed_spans(telemetry)) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert receiver.metadata[0]["authorization"] == "Bearer s3cr=t"
    assert receiver.metadata[0]["x-tenant"] == "shop"


def test_arguments_override_the_environment(telemetry: Telemetry, receiver: OtlpReceiver) -> None:
    environ = {"FAULTLENS_ENDPOINT": dead_endpoint(), "FAULTLENS_HEADERS": "x-from=env"}
    exporter = FaultlensSpanExporter(receiver.endpoint, {"X-From": "argument"}, environ=environ)
    try:
        assert exporter.export(mixed_spans(telemetry)) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert receiver.metadata[0]["x-from"] == "argument"
    assert names(receiver) == FAILURE_SPANS


def test_otlp_exporter_settings_never_reach_the_processor(
    telemetry: Telemetry, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another backend's endpoint, credentials, TLS and timeout settings stay with it."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{dead_endpoint()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://{dead_endpoint()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=jaeger-token")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-vendor-key=vendor-secret")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "false")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/nonexistent/ca.pem")
    exporter = FaultlensSpanExporter(environ={"FAULTLENS_ENDPOINT": receiver.endpoint})
    try:
        assert exporter.export(mixed_spans(telemetry)) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert names(receiver) == FAILURE_SPANS
    assert "authorization" not in receiver.metadata[0]
    assert "x-vendor-key" not in receiver.metadata[0]


def test_defaults() -> None:
    exporter = FaultlensSpanExporter(environ={})
    try:
        assert exporter.endpoint == "localhost:4317"
        assert exporter.secure is False
        assert exporter.metadata == ()
    finally:
        exporter.shutdown()


def test_https_means_tls_unless_told_otherwise() -> None:
    secure = FaultlensSpanExporter(environ={"FAULTLENS_ENDPOINT": "https://faultlens.internal"})
    plain = FaultlensSpanExporter("https://faultlens.internal:8443", insecure=True, environ={})
    try:
        assert (secure.endpoint, secure.secure) == ("faultlens.internal:4317", True)
        assert (plain.endpoint, plain.secure) == ("faultlens.internal:8443", False)
    finally:
        secure.shutdown()
        plain.shutdown()


def test_a_malformed_environment_endpoint_is_reported_and_the_default_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="faultlens"):
        exporter = FaultlensSpanExporter(environ={"FAULTLENS_ENDPOINT": "grpc://proc:4317"})
    try:
        assert exporter.endpoint == "localhost:4317"
    finally:
        exporter.shutdown()
    assert "FAULTLENS_ENDPOINT" in caplog.text
    assert "http or https" in caplog.text


def test_a_malformed_endpoint_argument_raises() -> None:
    with pytest.raises(ValueError, match="port"):
        FaultlensSpanExporter("proc:99999", environ={})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("localhost:4317", ("localhost:4317", False)),
        ("10.0.0.7:4318", ("10.0.0.7:4318", False)),
        ("proc", ("proc:4317", False)),
        (" http://proc:4317/ ", ("proc:4317", False)),
        ("HTTPS://proc:443", ("proc:443", True)),
        ("https://[::1]:4317", ("[::1]:4317", True)),
        ("[fd00::7]", ("[fd00::7]:4317", False)),
    ],
)
def test_parse_endpoint(value: str, expected: tuple[str, bool]) -> None:
    assert parse_endpoint(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "grpc://proc:4317",
        "http://",
        "proc:0",
        "proc:port",
        "http://proc:4317/v1/traces",
        "http://user:pw@proc:4317",
        "[::1",
        "[::1]4317",
        ":4317",
    ],
)
def test_parse_endpoint_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        parse_endpoint(value)


# --- lifecycle and registration ---------------------------------------------------------


def test_shutdown_and_force_flush_delegate(telemetry: Telemetry, receiver: OtlpReceiver) -> None:
    exporter = FaultlensSpanExporter(endpoint=receiver.endpoint, environ={})
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert exporter.export(mixed_spans(telemetry)) is SpanExportResult.FAILURE
    assert receiver.requests["traces"] == []


def test_registered_as_the_faultlens_traces_exporter() -> None:
    (entry_point,) = entry_points(group="opentelemetry_traces_exporter", name="faultlens")
    assert entry_point.load() is FaultlensSpanExporter


@pytest.mark.slow
def test_otel_traces_exporter_otlp_and_faultlens_under_opentelemetry_instrument() -> None:
    """Every span reaches the usual OTLP endpoint; the failure spans reach faultlens too."""
    with OtlpReceiver() as jaeger, OtlpReceiver() as processor:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OTEL_", "FAULTLENS_"))
        }
        env.update(
            OTEL_TRACES_EXPORTER="otlp,faultlens",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_SERVICE_NAME="checkout",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{jaeger.endpoint}",
            OTEL_EXPORTER_OTLP_HEADERS="authorization=jaeger-token",
            FAULTLENS_ENDPOINT=processor.endpoint,
            FAULTLENS_HEADERS="authorization=Bearer%20processor-token",
        )
        instrument = Path(sys.executable).parent / "opentelemetry-instrument"
        result = subprocess.run(
            [str(instrument), sys.executable, str(TESTS / "exporter_sample_app.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert jaeger.wait_for(lambda: len(jaeger.spans()) >= 5), result.stderr
        assert processor.wait_for(lambda: len(processor.spans()) >= 2), result.stderr
        assert sorted(names(jaeger)) == sorted(
            ["healthy", "cache-lookup", "error-status-only", "handled", "escaped"]
        )
        assert sorted(names(processor)) == ["escaped", "handled"]
        resource, _ = processor.spans()[0]
        assert resource["service.name"] == "checkout"
        assert {m["authorization"] for m in processor.metadata} == {"Bearer processor-token"}
        assert {m["authorization"] for m in jaeger.metadata} == {"jaeger-token"}
