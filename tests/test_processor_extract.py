"""Reading failures out of OTLP requests from any SDK."""

from __future__ import annotations

from typing import Any

import pytest
from faultlens_collector.ingest import extract
from faultlens_collector.ingest.categories import category_of_type
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from tests.processor_support import failure_attributes, logs_request, span, trace_request


def extract_spans(request: Any, **options: bool) -> extract.Extraction:
    return extract.extract_spans(request.SerializeToString(), **options)


def extract_logs(request: Any, **options: bool) -> extract.Extraction:
    return extract.extract_logs(request.SerializeToString(), **options)


def test_span_events_carry_service_span_context_and_faultlens_attributes() -> None:
    request = trace_request(
        [
            span(
                "charge",
                index=7,
                attributes={"tenant": "acme", "failure.severity": "low"},
                events=[
                    failure_attributes(
                        failure_category="dependency",
                        failure_severity="critical",
                        failure_handled=True,
                        failure_count=12,
                        exception_stacktrace="Traceback ...",
                    )
                ],
            )
        ],
        service="payments",
    )
    found = extract_spans(request, attributes=True)
    assert (found.items, found.rejected) == (1, 0)
    (item,) = found.occurrences
    assert item.fingerprint == "0123456789abcdef"
    assert (item.exception_type, item.message, item.stacktrace) == (
        "ValueError",
        "bad value 42",
        "Traceback ...",
    )
    assert (item.category, item.severity, item.handled, item.count) == (
        "dependency",
        "critical",
        True,
        12,
    )
    assert (item.service, item.span_name) == ("payments", "charge")
    assert item.trace_id == f"{7:032x}"
    assert item.span_id == f"{7:016x}"
    assert item.attributes["tenant"] == "acme"
    assert "exception.message" not in item.attributes


def test_foreign_failures_get_derived_fingerprint_category_and_severity() -> None:
    event = {
        "exception.type": "java.net.SocketTimeoutException",
        "exception.message": "Read timed out",
        "exception.escaped": True,
    }
    (item,) = extract_spans(trace_request([span(events=[event])])).occurrences
    assert len(item.fingerprint) == 16
    assert item.category == "timeout"
    assert item.handled is False
    assert item.severity == "high"
    assert item.count == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-5, 1), (True, 1), ("7", 1), (3, 3), (10**15, extract.MAX_COUNT)],
)
def test_failure_count_is_clamped_to_sane_values(value: object, expected: int) -> None:
    event = failure_attributes(failure_count=value)
    (item,) = extract_spans(trace_request([span(events=[event])])).occurrences
    assert item.count == expected


def test_a_bad_fingerprint_or_severity_is_replaced() -> None:
    event = failure_attributes("NOT-HEX", failure_severity="apocalyptic")
    (item,) = extract_spans(trace_request([span(events=[event])])).occurrences
    assert item.fingerprint != "NOT-HEX"
    assert len(item.fingerprint) == 16
    assert item.severity == "medium"


def test_oversized_strings_are_truncated_not_rejected() -> None:
    event = failure_attributes(message="m" * 100_000, exception_stacktrace="s" * 500_000)
    (item,) = extract_spans(trace_request([span("n" * 1000, events=[event])])).occurrences
    assert len(item.message) == extract.MAX_MESSAGE
    assert len(item.stacktrace) == extract.MAX_STACKTRACE
    assert len(item.span_name) == extract.MAX_NAME


def test_other_events_and_invalid_ids_are_ignored() -> None:
    plain = span(events=[failure_attributes()])
    plain.events[0].name = "retry"
    zero_ids = span(index=0, events=[failure_attributes()])
    found = extract_spans(trace_request([plain, zero_ids]))
    (item,) = found.occurrences
    assert (item.trace_id, item.span_id) == ("", "")
    assert item.time_unix_nano > 0


def test_nested_and_binary_attribute_values_are_skipped() -> None:
    event = span(events=[failure_attributes()])
    event.events[0].attributes.extend(
        [
            KeyValue(key="blob", value=AnyValue(bytes_value=b"\x00")),
            KeyValue(
                key="nested",
                value=AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="a")])),
            ),
            KeyValue(
                key="list",
                value=AnyValue(
                    array_value=ArrayValue(
                        values=[AnyValue(int_value=1), AnyValue(bytes_value=b"x")]
                    )
                ),
            ),
        ]
    )
    (item,) = extract_spans(trace_request([event]), attributes=True).occurrences
    assert "blob" not in item.attributes
    assert "nested" not in item.attributes
    assert item.attributes["list"] == (1,)


def test_without_attributes_only_the_failure_fields_are_read() -> None:
    request = trace_request([span(attributes={"tenant": "acme"}, events=[failure_attributes()])])
    (item,) = extract_spans(request).occurrences
    assert item.attributes == {}
    assert item.fingerprint == "0123456789abcdef"


def test_log_records_with_exception_attributes_are_failures() -> None:
    request = logs_request(
        [
            {"exception.type": "KeyError", "exception.message": "'sku'", "failure.handled": True},
            {"exception.message": "only a message"},
            {"message": "no exception"},
        ],
        service="inventory",
        index=3,
    )
    found = extract_logs(request)
    assert found.items == 3
    assert [(o.exception_type, o.message) for o in found.occurrences] == [
        ("KeyError", "'sku'"),
        ("", "only a message"),
    ]
    first = found.occurrences[0]
    assert (first.service, first.span_name, first.handled, first.category) == (
        "inventory",
        "",
        True,
        "lookup",
    )
    assert first.trace_id == f"{3:032x}"


def test_a_missing_service_name_is_unknown_service() -> None:
    request = trace_request([span(events=[failure_attributes()])])
    del request.resource_spans[0].resource.attributes[:]
    (item,) = extract_spans(request).occurrences
    assert item.service == "unknown_service"


@pytest.mark.parametrize(
    ("exception_type", "category"),
    [
        ("java.net.SocketTimeoutException", "timeout"),
        ("TimeoutError", "timeout"),
        ("context.DeadlineExceeded", "timeout"),
        ("java.net.ConnectException", "connection"),
        ("ECONNREFUSED", "connection"),
        ("KeyError", "lookup"),
        ("java.lang.NullPointerException", "attribute"),
        ("TypeError", "type"),
        ("java.lang.OutOfMemoryError", "resource"),
        ("PermissionError", "permission"),
        ("requests.exceptions.HTTPError", "dependency"),
        ("javax.validation.ConstraintViolationException", "validation"),
        ("com.example.Outer$ConfigurationException", "configuration"),
        ("asyncio.CancelledError", "cancelled"),
        ("faultlens.resilience.errors.HaltedError", "halted"),
        ("Zorglub", "unknown"),
        ("", "unknown"),
    ],
)
def test_categories_are_derived_from_type_names_of_any_language(
    exception_type: str, category: str
) -> None:
    assert category_of_type(exception_type) == category
