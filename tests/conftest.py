"""Shared fixtures: an in-memory OpenTelemetry pipeline wired into faultlens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import faultlens
import pytest
from faultlens import semconv
from interpreters import zero_code  # noqa: F401  (the fixture, for every test module)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# A headless Chromium and a page logged in to the console of a module's ``stack``.
from tests.console_support import browser, page

# A real PostgreSQL server for the tests that need one (started once, on first use).
from tests.postgres_support import postgres_cluster, postgres_url

__all__ = ["browser", "page", "postgres_cluster", "postgres_url"]


@dataclass
class Telemetry:
    """What faultlens emitted during one test."""

    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider

    def finished(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans.get_finished_spans())

    def failure_events(self) -> list[dict[str, Any]]:
        """Attributes of every failure event, in emission order, with the span name added."""
        events = []
        for span in self.finished():
            for event in span.events:
                if event.name == semconv.EXCEPTION_EVENT_NAME:
                    attrs = dict(event.attributes or {})
                    attrs["_span"] = span.name
                    events.append(attrs)
        return events

    def only_failure(self) -> dict[str, Any]:
        events = self.failure_events()
        assert len(events) == 1, events
        return events[0]

    def log_records(self) -> list[Any]:
        return [item.log_record for item in self.logs.get_finished_logs()]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Fresh providers with in-memory exporters, wired into a recorder in its start-up
    state (faultlens.set_testing), whose configuration is put back afterwards."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    try:
        with faultlens.set_testing(
            tracer_provider=tracer_provider, logger_provider=logger_provider
        ):
            try:
                yield Telemetry(spans, logs, tracer_provider, logger_provider)
            finally:
                faultlens.uninstall()
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()
