"""faultlens never breaks the program it observes."""

from __future__ import annotations

import logging

import faultlens
import pytest
from concurrency import run_concurrently
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class ExplodingProcessor(SpanProcessor):
    def on_start(self, span, parent_context=None) -> None:
        raise RuntimeError("processor bug")

    def on_end(self, span) -> None:
        raise RuntimeError("processor bug")


class FailingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans) -> SpanExportResult:
        self.calls += 1
        raise ConnectionRefusedError("collector down")


def test_a_broken_pipeline_never_raises_into_the_caller(caplog) -> None:
    provider = TracerProvider()
    provider.add_span_processor(ExplodingProcessor())
    with faultlens.set_testing(tracer_provider=provider):

        @faultlens.capture
        def work() -> int:
            raise KeyError("k")

        with pytest.raises(KeyError):  # the user's exception, not ours
            work()
        faultlens.record_failure(ValueError("again"))


def test_an_exporter_that_fails_and_logs_does_not_loop(caplog) -> None:
    exporter = FailingExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with faultlens.set_testing(tracer_provider=provider):
        faultlens.install_logging_capture(force=True)
        try:
            for _ in range(3):
                faultlens.record_failure(ValueError("x"), fingerprint="0000000000000001")
            assert exporter.calls == 3  # one export per failure; the exporter's own error
        finally:  # logs (opentelemetry logger) are not fed back into faultlens
            faultlens.uninstall()


def test_reentrant_recording_from_a_logging_handler_is_ignored(telemetry) -> None:
    class Noisy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                raise RuntimeError("handler trouble")
            except RuntimeError as exc:
                faultlens.record_failure(exc)

    faultlens.install_logging_capture()
    noisy = Noisy()
    logging.getLogger().addHandler(noisy)
    try:
        try:
            raise OSError("disk")
        except OSError:
            logging.getLogger("app").exception("disk trouble")
    finally:
        logging.getLogger().removeHandler(noisy)
    types = sorted(e["exception.type"] for e in telemetry.failure_events())
    assert types == ["OSError", "RuntimeError"]


def test_an_exception_whose_str_raises(telemetry) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert faultlens.record_failure(Unprintable()) is not None
    assert telemetry.only_failure()["exception.message"] == "<unprintable Unprintable>"


def test_huge_messages_are_clipped(telemetry) -> None:
    faultlens.configure(max_message_chars=100, max_stacktrace_chars=2000)
    try:
        raise ValueError("x" * 100_000)
    except ValueError as exc:
        faultlens.record_failure(exc)
    event = telemetry.only_failure()
    assert len(event["exception.message"]) == 101
    assert len(event["exception.stacktrace"]) <= 2000 + 50
    assert "[truncated by faultlens]" in event["exception.stacktrace"]


def test_internal_errors_are_logged_once(telemetry, caplog, monkeypatch) -> None:
    from faultlens import _recorder as recorder

    def broken(*args, **kwargs):
        raise RuntimeError("faultlens bug")

    monkeypatch.setattr(recorder, "fingerprint_exception", broken)
    with caplog.at_level(logging.WARNING, logger="faultlens"):
        assert faultlens.record_failure(ValueError("a")) is None
        assert faultlens.record_failure(ValueError("b")) is None
    messages = [r.getMessage() for r in caplog.records if "internal error" in r.getMessage()]
    assert messages == ["faultlens: internal error in record_failure (further ones are silent)"]


def test_concurrent_recording_of_distinct_failures(telemetry) -> None:
    def worker(n: int) -> None:
        for i in range(200):
            faultlens.record_failure(ValueError(f"{n}-{i}"), fingerprint=f"fp-{n}-{i % 5}")

    run_concurrently(worker)
    faultlens.flush()
    events = telemetry.failure_events()
    assert sum(e["failure.count"] for e in events) == 800
    assert len({e["failure.fingerprint"] for e in events}) == 20


def test_malformed_environment_values_fall_back_with_a_warning(monkeypatch, caplog) -> None:
    monkeypatch.setenv("FAULTLENS_STORM_BURST", "lots")
    monkeypatch.setenv("FAULTLENS_STORM_INTERVAL_SECONDS", "-3")
    from faultlens._config import settings_from_env

    with caplog.at_level(logging.WARNING, logger="faultlens"):
        settings = settings_from_env()
    assert settings.storm_burst == 10
    assert settings.storm_interval_seconds == 1.0
    assert "FAULTLENS_STORM_BURST='lots' must be a number >= 1" in caplog.text


def test_configure_rejects_unknown_settings() -> None:
    with pytest.raises(TypeError):
        faultlens.configure(no_such_setting=True)
