"""Spans that ended without failure, for halt rules that count consecutive failures.

A consecutive-failure streak ends on a success for its key. The processor sees
successes only when applications send it their ordinary spans too; it then reads,
per span with no ``exception`` event and a status other than ERROR, the values of
the key fields the halt rules use (``service.name`` from the resource,
``span.name``, any other name from the span's attributes) and hands each distinct
key of a request to the engine once (:class:`SuccessFeed`). Nothing of this runs
unless a halt rule needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from faultlens import semconv
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from faultlens_collector.actions.facts import SERVICE_NAME, SPAN_NAME
from faultlens_collector.processor.occurrences import attributes_of, resource_service

_ERROR: Final = Status.STATUS_CODE_ERROR

#: A success key: (field, value) pairs in the order of :attr:`SuccessFeed.fields`.
SuccessKey = tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class SuccessFeed:
    """Which key fields to read from successful spans, and who to tell."""

    fields: tuple[str, ...]
    on_success: Callable[[Mapping[str, Any]], None]

    def feed(self, request: Any) -> int:
        """Tell ``on_success`` about each distinct key among the successful spans of an
        ``ExportTraceServiceRequest`` (or its serialized bytes); returns how many keys
        that was."""
        if isinstance(request, bytes):
            request = ExportTraceServiceRequest.FromString(request)
        keys = success_keys(request, self.fields)
        for key in keys:
            self.on_success(dict(key))
        return len(keys)


def success_keys(request: Any, fields: tuple[str, ...]) -> set[SuccessKey]:
    """The distinct keys of the spans in an ``ExportTraceServiceRequest`` that ended
    without failure. A field a span lacks is left out of its key (a halt rule whose
    key needs it then ignores that success)."""
    keys: set[SuccessKey] = set()
    attribute_fields = tuple(name for name in fields if name not in (SERVICE_NAME, SPAN_NAME))
    per_span = any(name != SERVICE_NAME for name in fields)
    for resource_spans in request.resource_spans:
        service = resource_service(resource_spans.resource)
        if not per_span:
            # The key is the resource's: one successful span of it is enough.
            if any(_succeeded(span) for ss in resource_spans.scope_spans for span in ss.spans):
                keys.add(((SERVICE_NAME, service),))
            continue
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if not _succeeded(span):
                    continue
                attributes = attributes_of(span.attributes) if attribute_fields else {}
                key = []
                for name in fields:
                    if name == SERVICE_NAME:
                        key.append((name, service))
                    elif name == SPAN_NAME:
                        key.append((name, span.name))
                    elif name in attributes:
                        key.append((name, attributes[name]))
                keys.add(tuple(key))
    return keys


def _succeeded(span: Any) -> bool:
    return span.status.code != _ERROR and not any(
        event.name == semconv.EXCEPTION_EVENT_NAME for event in span.events
    )
