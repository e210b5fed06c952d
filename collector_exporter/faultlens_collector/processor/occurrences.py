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

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from faultlens import semconv

from faultlens_collector.grouping.fingerprint import fingerprint_of
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
_FAILURE_KEYS: Final = _EXCEPTION_KEYS | {
    "exception.escaped",
    semconv.FAILURE_CATEGORY,
    semconv.FAILURE_SEVERITY,
    semconv.FAILURE_FINGERPRINT,
    semconv.FAILURE_HANDLED,
    semconv.FAILURE_COUNT,
    semconv.FAILURE_SOURCE,
}
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


def failure_fields(key_values: Iterable[Any]) -> dict[str, Any]:
    """The ``exception.*`` and ``failure.*`` attributes of a repeated ``KeyValue``.

    Only these keys are decoded (the hot path of ingest); other attributes cost
    one key comparison each.
    """
    result: dict[str, Any] = {}
    for item in key_values:
        key = item.key
        if key in _FAILURE_KEYS:
            value = item.value
            kind = value.WhichOneof("value")
            if kind in _SCALARS:
                result[key] = getattr(value, kind)
    return result


def extract_spans(request: Any, *, attributes: bool = False) -> Extraction:
    """The failures of an ``ExportTraceServiceRequest``: every ``exception`` span event.

    An occurrence's time is the event's, else the span's end, else now. With
    ``attributes``, each occurrence also carries the span's attributes merged
    with the event's (the event's win), for halt-rule keys; without, only the
    failure fields are decoded.
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
                    fields = failure_fields(event.attributes)
                    if not (
                        fields.get(semconv.EXCEPTION_TYPE) or fields.get(semconv.EXCEPTION_MESSAGE)
                    ):
                        found.reject("exception event without exception.type or exception.message")
                        continue
                    context: dict[str, Any] = {}
                    if attributes:
                        context = attributes_of(span.attributes)
                        context.update(attributes_of(event.attributes))
                    found.occurrences.append(
                        _occurrence(
                            fields,
                            context,
                            time_unix_nano=event.time_unix_nano or span.end_time_unix_nano or now,
                            service=service,
                            span_name=span.name,
                            trace_id=span.trace_id,
                            span_id=span.span_id,
                        )
                    )
    return found


def extract_logs(request: Any, *, attributes: bool = False) -> Extraction:
    """The failures of an ``ExportLogsServiceRequest``: records with ``exception.*`` attributes.

    ``attributes`` as for :func:`extract_spans` (the record's attributes).
    """
    found = Extraction()
    now = time.time_ns()
    for resource_logs in request.resource_logs:
        service = resource_service(resource_logs.resource)
        for scope_logs in resource_logs.scope_logs:
            records = scope_logs.log_records
            found.items += len(records)
            for record in records:
                fields = failure_fields(record.attributes)
                if not any(key in _EXCEPTION_KEYS for key in fields):
                    continue
                if not (
                    fields.get(semconv.EXCEPTION_TYPE) or fields.get(semconv.EXCEPTION_MESSAGE)
                ):
                    found.reject("log record with empty exception.type and exception.message")
                    continue
                found.occurrences.append(
                    _occurrence(
                        fields,
                        attributes_of(record.attributes) if attributes else {},
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
    fields: dict[str, Any],
    context: dict[str, Any],
    *,
    time_unix_nano: int,
    service: str,
    span_name: str,
    trace_id: bytes,
    span_id: bytes,
) -> Occurrence:
    exception_type = _text(fields.get(semconv.EXCEPTION_TYPE), MAX_NAME)
    message = _text(fields.get(semconv.EXCEPTION_MESSAGE), MAX_MESSAGE)
    stacktrace = _text(fields.get(semconv.EXCEPTION_STACKTRACE), MAX_STACKTRACE)
    for key in _EXCEPTION_KEYS:
        context.pop(key, None)
    handled = _handled(fields)
    severity = fields.get(semconv.FAILURE_SEVERITY)
    if severity not in semconv.SEVERITY_RANK:
        severity = "medium" if handled is not False else "high"
    category = _text(fields.get(semconv.FAILURE_CATEGORY), MAX_NAME) or category_of_type(
        exception_type
    )
    return Occurrence(
        fingerprint=fingerprint_of(fields),
        exception_type=exception_type,
        message=message,
        stacktrace=stacktrace,
        category=category,
        severity=str(severity),
        handled=handled,
        count=_count(fields.get(semconv.FAILURE_COUNT)),
        time_unix_nano=time_unix_nano,
        service=service,
        span_name=span_name[:MAX_NAME],
        trace_id=trace_id.hex() if len(trace_id) == 16 and any(trace_id) else "",
        span_id=span_id.hex() if len(span_id) == 8 and any(span_id) else "",
        attributes=context,
    )


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
