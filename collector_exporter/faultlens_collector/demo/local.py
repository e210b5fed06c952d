"""Run the sample program through the SDK and group what it captured, in process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import faultlens
from faultlens import semconv
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from faultlens_collector.demo import sample_app


@dataclass
class CapturedGroup:
    """Failures with one fingerprint, as the SDK emitted them."""

    fingerprint: str
    exception_type: str
    message: str
    category: str
    severity: str
    handled: bool
    source: str
    count: int = 0
    events: int = 0
    spans: set[str] = field(default_factory=set)


def group_events(spans: Iterable[ReadableSpan]) -> list[CapturedGroup]:
    """Group ``exception`` events by ``failure.fingerprint``; counts sum ``failure.count``."""
    groups: dict[str, CapturedGroup] = {}
    for span in spans:
        for event in span.events:
            attrs = event.attributes or {}
            if (
                event.name != semconv.EXCEPTION_EVENT_NAME
                or semconv.FAILURE_FINGERPRINT not in attrs
            ):
                continue
            fingerprint = str(attrs[semconv.FAILURE_FINGERPRINT])
            group = groups.get(fingerprint)
            if group is None:
                group = groups[fingerprint] = CapturedGroup(
                    fingerprint=fingerprint,
                    exception_type=str(attrs.get(semconv.EXCEPTION_TYPE, "")),
                    message=str(attrs.get(semconv.EXCEPTION_MESSAGE, "")),
                    category=str(attrs.get(semconv.FAILURE_CATEGORY, "")),
                    severity=str(attrs.get(semconv.FAILURE_SEVERITY, "")),
                    handled=bool(attrs.get(semconv.FAILURE_HANDLED, False)),
                    source=str(attrs.get(semconv.FAILURE_SOURCE, "")),
                )
            group.severity = semconv.max_severity(
                group.severity, str(attrs.get(semconv.FAILURE_SEVERITY, ""))
            )
            count = attrs.get(semconv.FAILURE_COUNT, 1)
            group.count += count if isinstance(count, int) else 1
            group.events += 1
            group.spans.add(span.name)
    return sorted(
        groups.values(),
        key=lambda g: (-semconv.SEVERITY_RANK.get(g.severity, -1), -g.count, g.fingerprint),
    )


@dataclass
class LocalDemoResult:
    """What one in-process demo run produced."""

    outcome: sample_app.Outcome
    groups: Sequence[CapturedGroup]
    spans: Sequence[ReadableSpan]


def run_local_demo() -> LocalDemoResult:
    """Run the sample program with faultlens and an in-memory span exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    faultlens.configure(tracer_provider=provider)
    sample_app.tracer = provider.get_tracer("faultlens.demo")
    quiet_thread_hook = threading.excepthook
    threading.excepthook = lambda args: None  # the demo shows failures as a table instead
    root = logging.getLogger()
    saved_level = root.level
    root.setLevel(logging.INFO)
    faultlens.install()
    try:
        outcome = sample_app.run()
    finally:
        faultlens.uninstall()
        threading.excepthook = quiet_thread_hook
        root.setLevel(saved_level)
        faultlens.flush()
    spans = exporter.get_finished_spans()
    provider.shutdown()
    faultlens.configure(tracer_provider=trace.get_tracer_provider())
    return LocalDemoResult(outcome, group_events(spans), spans)
