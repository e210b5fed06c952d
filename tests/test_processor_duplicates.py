"""One exception, one occurrence at the processor: duplicate events on one span merge.

Spans from SDKs that cannot deduplicate themselves (other languages, older
faultlens, a faultlens SDK without its span hook) may carry several
``exception`` events for one exception: a faultlens event next to a framework
instrumentation's plain one, or two plain ones from two layers. Within a span
they count once; a ``failure.count`` of 0 is a reference to an occurrence
counted by another event and adds nothing. Events on different spans, and
different exceptions on one span, still count apiece.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from faultlens_collector.control.client import ControlClient
from faultlens_collector.ingest.extract import extract_logs, extract_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from processor_support import (
    all_groups,
    failure_attributes,
    logs_request,
    running_processor,
    span,
    trace_request,
)

TRACE = (
    'Traceback (most recent call last):\n  File "/srv/shop/views.py", line 9, in pay\n'
    "ValueError: bad value 42"
)


def _plain(message: str = "bad value 42", stacktrace: str = TRACE) -> dict[str, object]:
    return failure_attributes(None, message=message, exception_stacktrace=stacktrace)


def _faultlens(count: int = 1, message: str = "bad value 42") -> dict[str, object]:
    return failure_attributes(
        "00000000000000f1",
        message=message,
        failure_count=count,
        failure_handled=False,
        failure_source="auto",
    )


def _counts(events: list[dict[str, object]]) -> list[tuple[str, int]]:
    found = extract_spans(trace_request([span(events=events)]).SerializeToString()).occurrences
    return [(item.fingerprint, item.count) for item in found]


def test_a_plain_event_next_to_the_faultlens_one_is_the_same_exception() -> None:
    assert _counts([_faultlens(), _plain()]) == [("00000000000000f1", 1)]
    assert _counts([_plain(), _faultlens()]) == [("00000000000000f1", 1)]


def test_a_plain_event_next_to_a_reference_counts_nothing() -> None:
    assert _counts([_faultlens(count=0), _plain()]) == []


def test_identical_plain_events_on_one_span_count_once() -> None:
    (only,) = _counts([_plain(), _plain()])
    assert only[1] == 1


def test_different_exceptions_on_one_span_count_apiece() -> None:
    assert len(_counts([_plain("one"), _plain("two")])) == 2
    assert len(_counts([_plain(stacktrace=TRACE + "\n"), _plain()])) == 2
    assert len(_counts([_faultlens(message="one"), _plain("two")])) == 2
    assert _counts([_faultlens(), _faultlens()]) == [("00000000000000f1", 1)] * 2


def test_a_reference_alone_counts_nothing_on_either_signal() -> None:
    assert _counts([_faultlens(count=0)]) == []
    assert extract_logs(logs_request([_faultlens(count=0)]).SerializeToString()).occurrences == []
    assert (
        len(extract_logs(logs_request([_faultlens(count=1)]).SerializeToString()).occurrences) == 1
    )


def test_the_same_exception_on_two_spans_counts_on_the_one_that_counted_it() -> None:
    inner = span("reserve", events=[_faultlens()], index=1)
    outer = span("POST /pay", events=[_faultlens(count=0)], index=2)
    found = extract_spans(trace_request([inner, outer]).SerializeToString()).occurrences
    assert [(item.span_name, item.count) for item in found] == [("reserve", 1)]


def test_the_processor_stores_one_group_of_n(tmp_path: Path) -> None:
    spans = [span("GET /x", events=[_faultlens(), _plain()], index=i + 1) for i in range(5)]
    with running_processor(tmp_path) as processor:
        with grpc.insecure_channel(processor.address) as channel:
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(trace_request(spans))
        with ControlClient(processor.address) as client:
            groups = all_groups(client)
    assert {fp: group.count for fp, group in groups.items()} == {"00000000000000f1": 5}
