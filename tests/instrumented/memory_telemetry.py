"""An in-memory OpenTelemetry pipeline for the engine's scenario scripts.

Importing it installs a ``TracerProvider`` exporting to :data:`exporter`;
:func:`failures` returns the chosen attributes of every faultlens failure
event recorded since the last call (and forgets them).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

#: ``_span`` and ``_status`` stand for the span's name and status code.
DEFAULT_KEYS = ("exception.type", "failure.handled", "failure.source", "_span", "_status")


def failures(keys: tuple[str, ...] = DEFAULT_KEYS) -> list[list[Any]]:
    found = []
    for span in exporter.get_finished_spans():
        for event in span.events:
            attrs: dict[str, Any] = dict(event.attributes or {})
            if "failure.source" in attrs:
                attrs["_span"] = span.name
                attrs["_status"] = span.status.status_code.name
                found.append([attrs.get(key) for key in keys])
    exporter.clear()
    return found
