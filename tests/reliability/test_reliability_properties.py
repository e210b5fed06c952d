"""Any decodable OTLP request, generated: acknowledged failures are stored exactly once.

Hypothesis builds requests with random attribute trees (every ``AnyValue``
kind, nested), failure attributes of the right and the wrong types, any event
name, any time; the processor must answer every one with success, report the
invalid failures in ``partial_success``, and add exactly the valid failures'
counts to the store. Seeded (``derandomize``): the same examples every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlens_collector.control.client import ControlClient
from faultlens_collector.processor.server import Processor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.processor_support import LOGS_EXPORT, TRACE_EXPORT, all_groups, raw_call
from tests.processor_support import running_processor as _running_processor

FAILURE_KEYS = (
    "exception.type",
    "exception.message",
    "exception.stacktrace",
    "failure.fingerprint",
    "failure.count",
    "failure.handled",
    "failure.severity",
    "failure.category",
    "exception.escaped",
)
SCALARS = ("string_value", "bool_value", "int_value", "double_value")
NAMED = ("exception.type", "exception.message")

scalars = st.one_of(
    st.text(max_size=12).map(lambda text: AnyValue(string_value=text)),
    st.booleans().map(lambda flag: AnyValue(bool_value=flag)),
    st.integers(-(1 << 63), (1 << 63) - 1).map(lambda number: AnyValue(int_value=number)),
    st.floats().map(lambda number: AnyValue(double_value=number)),
    st.binary(max_size=8).map(lambda data: AnyValue(bytes_value=data)),
    st.just(AnyValue()),
)
any_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(
            lambda values: AnyValue(array_value=ArrayValue(values=values))
        ),
        st.lists(st.tuples(st.text(max_size=4), children), max_size=3).map(
            lambda pairs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in pairs])
            )
        ),
    ),
    max_leaves=8,
)
keys = st.one_of(st.sampled_from(FAILURE_KEYS), st.text(max_size=8))
attribute_lists = st.lists(
    st.builds(lambda key, value: KeyValue(key=key, value=value), keys, any_values), max_size=6
)
# Most events carry a type, so many are valid; the rest of the attributes are anything.
typed = st.builds(
    lambda name, extra: [KeyValue(key="exception.type", value=AnyValue(string_value=name)), *extra],
    st.sampled_from(("ValueError", "KeyError", "x")),
    attribute_lists,
)
event_attributes = st.one_of(typed, attribute_lists)
times = st.one_of(st.just(0), st.integers(0, (1 << 64) - 1))
events = st.builds(
    lambda name, attributes, time: Span.Event(
        name=name, attributes=attributes, time_unix_nano=time
    ),
    st.sampled_from(("exception", "exception", "exception", "log", "")),
    event_attributes,
    times,
)
spans = st.builds(
    lambda name, events, end: Span(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name=name, events=events, end_time_unix_nano=end
    ),
    st.text(max_size=8),
    st.lists(events, max_size=4),
    times,
)
trace_requests = st.lists(spans, min_size=1, max_size=4).map(
    lambda spans: ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )
)
records = st.builds(
    lambda attributes, time: LogRecord(attributes=attributes, time_unix_nano=time),
    event_attributes,
    times,
)
log_requests = st.lists(records, min_size=1, max_size=5).map(
    lambda records: ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])]
    )
)


def _fields(attributes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for item in attributes:
        kind = item.value.WhichOneof("value")
        if item.key in FAILURE_KEYS and kind in SCALARS:
            fields[item.key] = getattr(item.value, kind)
    return fields


def _expected(fields: dict[str, Any]) -> int | None:
    """The count the processor must store for a failure, None when it is invalid."""
    named = [fields.get(key) for key in ("exception.type", "exception.message")]
    if not any(isinstance(value, str) and value for value in named):
        return None
    count = fields.get("failure.count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return 1
    return min(count, 1_000_000_000)  # 0: a reference to an occurrence counted elsewhere


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _oracle_spans(request: ExportTraceServiceRequest) -> tuple[int, int]:
    """What the processor stores and rejects: per span, a plain event with the type and
    message of an event that carries a fingerprint, or a repeat of an identical plain
    event, is the same exception (counted once)."""
    stored = rejected = 0
    for span in request.resource_spans[0].scope_spans[0].spans:
        valid: list[tuple[dict[str, Any], int, bool]] = []
        for event in span.events:
            if event.name == "exception":
                fields = _fields(event.attributes)
                count = _expected(fields)
                if count is None:
                    rejected += 1
                    continue
                sdk = any(
                    item.key == "failure.fingerprint"
                    and item.value.WhichOneof("value") == "string_value"
                    for item in event.attributes
                )
                valid.append((fields, count, sdk))
        by_sdk = {
            (_text(f.get("exception.type")), _text(f.get("exception.message")))
            for f, _, sdk in valid
            if sdk
        }
        plain: set[tuple[str, str, str]] = set()
        for fields, count, sdk in valid:
            key = (
                _text(fields.get("exception.type")),
                _text(fields.get("exception.message")),
                _text(fields.get("exception.stacktrace")),
            )
            if not sdk and count:
                if key[:2] in by_sdk or key in plain:
                    continue
                plain.add(key)
            stored += count
    return stored, rejected


def _oracle_logs(request: ExportLogsServiceRequest) -> tuple[int, int]:
    stored = rejected = 0
    for record in request.resource_logs[0].scope_logs[0].log_records:
        fields = _fields(record.attributes)
        # Only records with an exception.type or exception.message key are looked at
        # (the processor's byte search for those keys, processor/framing.py).
        if not any(item.key in NAMED for item in record.attributes):
            continue
        if not any(key.startswith("exception.") and key != "exception.escaped" for key in fields):
            continue
        count = _expected(fields)
        stored, rejected = (stored, rejected + 1) if count is None else (stored + count, rejected)
    return stored, rejected


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    with _running_processor(Path(tmp_path_factory.mktemp("properties"))) as running:
        yield running


def _stored(processor: Processor) -> int:
    with ControlClient(processor.address, timeout=10) as client:
        return sum(group.count for group in all_groups(client).values())


def _send_and_count(processor: Processor, path: str, request: Any) -> tuple[Any, int]:
    """Send ``request``; (the reply's partial_success, occurrences the store gained)."""
    before = _stored(processor)
    body, error = raw_call(processor.address, path, request.SerializeToString())
    assert error is None, error
    reply = {TRACE_EXPORT: ExportTraceServiceResponse, LOGS_EXPORT: ExportLogsServiceResponse}
    return reply[path].FromString(body).partial_success, _stored(processor) - before


SETTINGS = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.slow
@settings(SETTINGS, max_examples=60)
@given(request=trace_requests)
def test_any_trace_request_stores_exactly_its_valid_failures(
    processor: Processor, request: ExportTraceServiceRequest
) -> None:
    expected, rejected = _oracle_spans(request)
    partial, stored = _send_and_count(processor, TRACE_EXPORT, request)
    assert (partial.rejected_spans, stored) == (rejected, expected)


@pytest.mark.slow
@settings(SETTINGS, max_examples=40)
@given(request=log_requests)
def test_any_logs_request_stores_exactly_its_valid_failures(
    processor: Processor, request: ExportLogsServiceRequest
) -> None:
    expected, rejected = _oracle_logs(request)
    partial, stored = _send_and_count(processor, LOGS_EXPORT, request)
    assert (partial.rejected_log_records, stored) == (rejected, expected)
