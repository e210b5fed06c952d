"""Finding the spans with failures without decoding the others (ingest/framing.py),
and the cached verdicts on repeated span events (ingest/extract.py)."""

from __future__ import annotations

from faultlens_collector.ingest import extract as occurrences
from faultlens_collector.ingest.framing import (
    SPAN_MARKERS,
    candidates,
    exception_span_indexes,
    parse_frames,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.processor_support import failure_attributes, key_values, span, trace_request

EVENT_NAMES = ["exception", "exceptional", "retry", "", "exception\x12\texception", "é"]


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    header, length = bytearray([number << 3 | 2]), len(payload)
    while length > 0x7F:
        header.append(length & 0x7F | 0x80)
        length >>= 7
    header.append(length)
    return bytes(header) + payload


def request_of(scopes: list[list[list[str]]], resources: int) -> ExportTraceServiceRequest:
    """A request whose scopes hold spans with events of the given names, spread over
    ``resources`` resources; span attributes mention ``exception`` to tempt a byte search."""
    request = ExportTraceServiceRequest()
    for number, scope in enumerate(scopes):
        if number < resources or not request.resource_spans:
            request.resource_spans.append(
                ResourceSpans(resource=Resource(attributes=key_values({"service.name": "s"})))
            )
        spans = [
            Span(
                trace_id=bytes(16),
                name="exception",
                attributes=[KeyValue(key="exception", value=AnyValue(string_value="exception"))],
                events=[Span.Event(name=name, time_unix_nano=1) for name in names],
            )
            for names in scope
        ]
        request.resource_spans[-1].scope_spans.append(ScopeSpans(spans=spans))
    return request


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.lists(st.sampled_from(EVENT_NAMES), max_size=3), max_size=40),
        min_size=1,
        max_size=4,
    ),
    st.integers(1, 4),
)
def test_the_spans_with_an_exception_event_are_found_exactly(
    scopes: list[list[list[str]]], resources: int
) -> None:
    body = request_of(scopes, resources).SerializeToString()
    found = exception_span_indexes(body)
    assert found is not None
    expected = [
        [index for index, names in enumerate(scope) if "exception" in names] for scope in scopes
    ]
    # A span listed beyond those is one whose other event name holds the marker bytes.
    for listed, wanted, scope in zip(found, expected, scopes, strict=True):
        assert set(wanted) <= set(listed)
        assert all("exception" in "".join(scope[index]) for index in listed)
    # The byte search agrees on what holds a failure (it may list more).
    frame = parse_frames(body)
    items = [scope.items for entry in frame.resources for scope in entry.scopes]
    for scope_items, wanted in zip(items, expected, strict=True):
        searched = list(candidates(scope_items, SPAN_MARKERS))
        assert all(scope_items[index] in searched for index in wanted)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.just([]),
                st.just(["exception"]),
                st.lists(st.sampled_from(EVENT_NAMES), max_size=2),
            ),
            max_size=60,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_spans_with_one_exception_event_or_none_are_indexed_exactly(
    scopes: list[list[list[str]]],
) -> None:
    # The usual request (each span without events or with one `exception` event) takes
    # a shortcut; any other span in a scope sends that scope the general way.
    body = request_of(scopes, 1).SerializeToString()
    expected = [[i for i, names in enumerate(scope) if names == ["exception"]] for scope in scopes]
    found = exception_span_indexes(body)
    assert found is not None
    for listed, wanted, scope in zip(found, expected, scopes, strict=True):
        assert set(wanted) <= set(listed)
        assert all("exception" in "".join(scope[index]) for index in listed)
        if all(names in ([], ["exception"]) for names in scope):
            assert listed == wanted


def test_a_request_the_skeleton_cannot_decode_falls_back_to_the_byte_search() -> None:
    good = span(events=[failure_attributes()]).SerializeToString()
    # A span that is not protobuf (a truncated field) beside one with a failure: the
    # frame keeps spans as bytes and decodes, the event skeleton does not.
    scope = field(2, good) + field(2, b"\x0a\x05")
    body = field(1, field(2, scope))
    assert exception_span_indexes(body) is None
    found = occurrences.extract_spans(body)
    assert [o.fingerprint for o in found.occurrences] == ["0123456789abcdef"]
    assert found.items == 2
    assert found.rejected == 0


def test_a_span_whose_later_exception_event_does_not_decode_keeps_none_of_its_failures() -> None:
    # The first event of the second span is read (from the verdict cache) before its
    # second event fails to decode: the span is rejected whole.
    warm = trace_request([span(events=[failure_attributes()], index=1)]).SerializeToString()
    assert len(occurrences.extract_spans(warm).occurrences) == 1
    good = span(events=[failure_attributes()], index=1).SerializeToString()
    broken_event = b"\x12\x09exception" + b"\x1a\x05\x0a"  # attributes cut short
    both = span(events=[failure_attributes()], index=2).SerializeToString() + field(
        11, broken_event
    )
    found = occurrences.extract_spans(field(1, field(2, field(2, good) + field(2, both))))
    assert [o.span_id[-1] for o in found.occurrences] == ["1"]
    assert found.rejected == 1
    assert "does not decode" in found.message


def test_a_repeated_event_keeps_its_own_time_and_context() -> None:
    events = [failure_attributes(message="same")]
    request = trace_request(
        [span(events=events, index=n, time_unix_nano=1_000 + n) for n in range(1, 4)]
    )
    found = occurrences.extract_spans(request.SerializeToString())
    assert [(o.time_unix_nano, o.span_id[-1]) for o in found.occurrences] == [
        (1_001, "1"),
        (1_002, "2"),
        (1_003, "3"),
    ]
    assert len({o.fingerprint for o in found.occurrences}) == 1


def test_an_event_with_its_time_after_its_name_is_read_the_same() -> None:
    event = Span.Event(
        name="exception", time_unix_nano=77, attributes=key_values(failure_attributes())
    )
    canonical = event.SerializeToString()
    time_field = canonical[:9]  # tag 0x09 and the fixed64
    assert time_field[0] == 0x09
    reordered = canonical[9:] + time_field  # still a valid encoding of the same event
    template, when = occurrences.exception_event(reordered)
    assert when == 77
    assert isinstance(template, tuple)
    assert occurrences.exception_event(canonical) == (template, 77)


def test_an_invalid_exception_event_is_rejected_every_time_it_repeats() -> None:
    invalid = {"failure.category": "value"}  # neither type nor message
    request = trace_request([span(events=[invalid], index=n) for n in range(1, 4)])
    found = occurrences.extract_spans(request.SerializeToString())
    assert found.occurrences == []
    assert found.rejected == 3
    assert "without exception.type or exception.message" in found.message


def test_other_events_are_not_failures_even_when_cached() -> None:
    other = Span.Event(name="retry", time_unix_nano=5).SerializeToString()
    for _ in range(2):
        assert occurrences.exception_event(other) == (None, 5)


def test_a_later_time_field_wins_even_for_a_repeated_event() -> None:
    event = Span.Event(
        name="exception", time_unix_nano=5, attributes=key_values(failure_attributes())
    )
    twice_timed = event.SerializeToString() + Span.Event(time_unix_nano=9).SerializeToString()
    for _ in range(2):  # decoded, then possibly from the cache
        assert occurrences.exception_event(twice_timed)[1] == 9
