"""Failures found in OTLP requests: :class:`Occurrence` and the extractors.

A failure is an ``exception`` span event (TraceService) or a log record carrying
``exception.type`` or ``exception.message`` (LogsService), from any OpenTelemetry
SDK. The ``failure.*`` attributes faultlens' SDK adds are used when present and
valid; otherwise the processor derives them: the fingerprint from the type, the
stack trace and the message; the category from the type's name; the severity
``medium`` (``high`` for a failure that escaped).

Only what the group store needs is copied out of the protobuf messages, and only
for the spans that carry a failure: walking a request costs a few attribute
reads per span. Oversized strings are truncated, never rejected.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from faultlens import semconv

from faultlens_collector.grouping.fingerprint import compute_fingerprint
from faultlens_collector.processor.categories import category_of_type

#: Longest ``exception.message`` kept (characters).
MAX_MESSAGE: Final = 8 * 1024
#: Longest ``exception.stacktrace`` kept (characters).
MAX_STACKTRACE: Final = 64 * 1024
#: Longest span name, service name or category kept.
MAX_NAME: Final = 256
#: ``failure.count`` values above this are clamped (a single event cannot stand for more).
MAX_COUNT: Final = 1_000_000_000
#: Attributes of a span or event copied for halt-rule keys beyond this many are ignored.
MAX_ATTRIBUTES: Final = 64

_EXCEPTION_KEYS: Final = frozenset(
    {semconv.EXCEPTION_TYPE, semconv.EXCEPTION_MESSAGE, semconv.EXCEPTION_STACKTRACE}
)
_HEX16: Final = re.compile("[0-9a-f]{16}")
_SCALARS: Final = frozenset({"string_value", "bool_value", "int_value", "double_value"})


@dataclass(slots=True)
class Occurrence:
    """One failure event (standing for ``count`` occurrences) as the store consumes it."""

    fingerprint: str
    exception_type: str
    message: str
    stacktrace: str
    category: str
    severity: str
    handled: bool | None
    count: int
    time_unix_nano: int
    service: str
    span_name: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Extraction:
    """What one request held: its failures and the items rejected as invalid."""

    occurrences: list[Occurrence] = field(default_factory=list)
    items: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        """Count one rejected item (span or log record) and remember why (first few reasons)."""
        self.rejected += 1
        if len(self.reasons) < 3 and reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def message(self) -> str:
        """The ``partial_success`` error message: the distinct reasons, ``; ``-joined."""
        return "; ".join(self.reasons)


def any_value(value: Any) -> Any:
    """The Python value of an OTLP ``AnyValue`` (arrays as tuples of scalars, else None)."""
    kind = value.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(value, kind)
    if kind == "array_value":
        items = []
        for item in value.array_value.values:
            item_kind = item.WhichOneof("value")
            if item_kind in _SCALARS:
                items.append(getattr(item, item_kind))
        return tuple(items)
    return None


def attributes_of(key_values: Iterable[Any], limit: int = MAX_ATTRIBUTES) -> dict[str, Any]:
    """Scalar and array attributes of a repeated ``KeyValue`` (nested maps and bytes skipped)."""
    result: dict[str, Any] = {}
    for item in key_values:
        if len(result) >= limit:
            break
        value = any_value(item.value)
        if value is not None:
            result[item.key] = value
    return result


def resource_service(resource: Any) -> str:
    """``service.name`` of an OTLP resource, or ``unknown_service`` as the SDKs default to."""
    for item in resource.attributes:
        if item.key == "service.name":
            return _text(item.value.string_value, MAX_NAME) or "unknown_service"
    return "unknown_service"


def extract_spans(request: Any) -> Extraction:
    """The failures of an ``ExportTraceServiceRequest``: every ``exception`` span event.

    An occurrence's time is the event's, else the span's end, else now. The span's
    attributes come with the event's (the event's win) for halt-rule keys.
    """
    found = Extraction()
    now = time.time_ns()
    for resource_spans in request.resource_spans:
        service = resource_service(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            found.items += len(spans)
            for span in spans:
                if not span.events:
                    continue
                for event in span.events:
                    if event.name != semconv.EXCEPTION_EVENT_NAME:
                        continue
                    attributes = attributes_of(event.attributes)
                    if not (
                        attributes.get(semconv.EXCEPTION_TYPE)
                        or attributes.get(semconv.EXCEPTION_MESSAGE)
                    ):
                        found.reject("exception event without exception.type or exception.message")
                        continue
                    context = attributes_of(span.attributes)
                    context.update(attributes)
                    found.occurrences.append(
                        _occurrence(
                            context,
                            time_unix_nano=event.time_unix_nano or span.end_time_unix_nano or now,
                            service=service,
                            span_name=span.name,
                            trace_id=span.trace_id,
                            span_id=span.span_id,
                        )
                    )
    return found


def extract_logs(request: Any) -> Extraction:
    """The failures of an ``ExportLogsServiceRequest``: records with ``exception.*`` attributes."""
    found = Extraction()
    now = time.time_ns()
    for resource_logs in request.resource_logs:
        service = resource_service(resource_logs.resource)
        for scope_logs in resource_logs.scope_logs:
            records = scope_logs.log_records
            found.items += len(records)
            for record in records:
                if not any(item.key in _EXCEPTION_KEYS for item in record.attributes):
                    continue
                attributes = attributes_of(record.attributes)
                if not (
                    attributes.get(semconv.EXCEPTION_TYPE)
                    or attributes.get(semconv.EXCEPTION_MESSAGE)
                ):
                    found.reject("log record with empty exception.type and exception.message")
                    continue
                found.occurrences.append(
                    _occurrence(
                        attributes,
                        time_unix_nano=record.time_unix_nano
                        or record.observed_time_unix_nano
                        or now,
                        service=service,
                        span_name="",
                        trace_id=record.trace_id,
                        span_id=record.span_id,
                    )
                )
    return found


def _occurrence(
    attributes: dict[str, Any],
    *,
    time_unix_nano: int,
    service: str,
    span_name: str,
    trace_id: bytes,
    span_id: bytes,
) -> Occurrence:
    exception_type = _text(attributes.pop(semconv.EXCEPTION_TYPE, ""), MAX_NAME)
    message = _text(attributes.pop(semconv.EXCEPTION_MESSAGE, ""), MAX_MESSAGE)
    stacktrace = _text(attributes.pop(semconv.EXCEPTION_STACKTRACE, ""), MAX_STACKTRACE)
    handled = _handled(attributes)
    severity = attributes.get(semconv.FAILURE_SEVERITY)
    if severity not in semconv.SEVERITY_RANK:
        severity = "medium" if handled is not False else "high"
    category = _text(attributes.get(semconv.FAILURE_CATEGORY, ""), MAX_NAME) or category_of_type(
        exception_type
    )
    return Occurrence(
        fingerprint=_fingerprint(attributes, exception_type, stacktrace, message),
        exception_type=exception_type,
        message=message,
        stacktrace=stacktrace,
        category=category,
        severity=str(severity),
        handled=handled,
        count=_count(attributes.get(semconv.FAILURE_COUNT)),
        time_unix_nano=time_unix_nano,
        service=service,
        span_name=span_name[:MAX_NAME],
        trace_id=trace_id.hex() if len(trace_id) == 16 and any(trace_id) else "",
        span_id=span_id.hex() if len(span_id) == 8 and any(span_id) else "",
        attributes=attributes,
    )


def _fingerprint(
    attributes: Mapping[str, Any], exception_type: str, stacktrace: str, message: str
) -> str:
    given = attributes.get(semconv.FAILURE_FINGERPRINT)
    if isinstance(given, str) and _HEX16.fullmatch(given):
        return given
    return compute_fingerprint(exception_type, stacktrace, message)


def _handled(attributes: Mapping[str, Any]) -> bool | None:
    handled = attributes.get(semconv.FAILURE_HANDLED)
    if isinstance(handled, bool):
        return handled
    escaped = attributes.get("exception.escaped")
    if isinstance(escaped, bool):
        return not escaped
    return None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return 1
    return min(value, MAX_COUNT)


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""
