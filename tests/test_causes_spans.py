"""What ingest reads for root-cause linking (causes/spans.py through extract_spans)."""

from __future__ import annotations

from faultlens_collector.causes.linking import STATUS_ERROR, STATUS_OK
from faultlens_collector.causes.spans import SpanTrees, add_wanted
from faultlens_collector.ingest.extract import extract_spans
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.processor_support import failure_attributes, key_values, trace_request

TRACE = bytes(range(1, 17))


def _span(number: int, parent: int, *, failing: bool = False, status: int = 0) -> Span:
    return Span(
        trace_id=TRACE,
        span_id=number.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=f"span{number}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1000 + number,
        end_time_unix_nano=2000 - number,
        status=Status(code=status),  # type: ignore[arg-type]
        attributes=key_values({"http.route": "/x"}),
        events=[
            Span.Event(
                name="exception",
                time_unix_nano=1500,
                attributes=key_values(failure_attributes(failure_handled=False)),
            )
        ]
        if failing
        else [],
    )


def test_without_wanted_nothing_is_read_for_linking() -> None:
    body = trace_request([_span(2, 1, failing=True)]).SerializeToString()
    assert extract_spans(body).spans == []


def test_the_facts_of_a_failing_span() -> None:
    body = trace_request([_span(2, 1, failing=True, status=STATUS_ERROR)]).SerializeToString()
    found = extract_spans(body, trees=SpanTrees({}))
    ((trace_id, facts),) = found.spans
    assert trace_id == TRACE
    assert facts.span_id == (2).to_bytes(8, "big")
    assert facts.parent_id == (1).to_bytes(8, "big")
    assert (facts.start, facts.end, facts.status, facts.kind) == (1002, 1998, STATUS_ERROR, 2)
    assert facts.service == "checkout"
    ((occurrence,), (failure,)) = (found.occurrences, facts.failures)
    assert (failure.fingerprint, failure.time_unix_nano, failure.handled, failure.service) == (
        occurrence.fingerprint,
        occurrence.time_unix_nano,
        occurrence.handled,
        occurrence.service,
    )
    assert failure.stacktrace is occurrence.stacktrace  # a compact copy: strings shared


def test_wanted_spans_without_failures_are_found() -> None:
    spans = [_span(number, number - 1, status=STATUS_OK) for number in range(1, 50)]
    body = trace_request([*spans, _span(60, 59, failing=True)]).SerializeToString()
    wanted = {(7).to_bytes(8, "big"): object(), (99).to_bytes(8, "big"): object()}
    found = extract_spans(body, trees=SpanTrees(wanted))
    ids = [facts.span_id for _, facts in found.spans]
    assert ids == [(60).to_bytes(8, "big"), (7).to_bytes(8, "big")]
    assert found.spans[1][1].status == STATUS_OK
    assert found.spans[1][1].failures == ()


def test_add_wanted_skips_what_does_not_decode_and_other_layouts() -> None:
    good = _span(5, 4).SerializeToString()
    wanted = {(5).to_bytes(8, "big")}
    broken = good[:20] + (5).to_bytes(8, "big") + b"\xff\xff\xff"  # matches, then garbage
    found: list = []
    add_wanted([good, broken], wanted, "svc", found)
    assert [facts.span_id for _, facts in found] == [(5).to_bytes(8, "big")]
    # A span written span id first is not found (treated as missing by linking).
    reordered = Span(span_id=(5).to_bytes(8, "big"), trace_id=TRACE).SerializeToString()
    reordered = reordered[10:] + reordered[:10]
    found = []
    add_wanted([reordered], wanted, "svc", found)
    assert found == []


def test_a_sample_of_the_traces_under_load() -> None:
    spans = [
        Span(
            trace_id=bytes([first]) + bytes(15),
            span_id=first.to_bytes(8, "big"),
            events=[Span.Event(name="exception", attributes=key_values(failure_attributes()))],
        )
        for first in range(1, 256, 2)  # 128 traces, one span with a failure each
    ]
    body = trace_request(spans).SerializeToString()
    trees = SpanTrees({})
    trees.keep = 64  # one trace in four: those whose id starts with a byte below 64
    found = extract_spans(body, trees=trees)
    assert len(found.occurrences) == 128  # the failures are all stored
    assert found.offered == 128
    assert sorted(trace_id[0] for trace_id, _ in found.spans) == list(range(1, 64, 2))
    assert trees.follows(bytes([63]))
    assert not trees.follows(bytes([64]))


def test_wanted_spans_are_looked_for_in_the_sampled_share_of_scopes() -> None:
    trees = SpanTrees({})
    assert not trees.scan_now()  # nothing wanted: nothing to look for
    trees.wanted = {b"12345678": None}
    assert all(trees.scan_now() for _ in range(10))
    trees.keep = 64
    assert sum(trees.scan_now() for _ in range(400)) == 100


def test_the_share_followed_keeps_within_the_budget() -> None:
    now = [100.0]
    trees = SpanTrees({}, budget=100, clock=lambda: now[0])
    trees.offer(60)
    assert trees.keep == 256  # within the budget: every trace
    trees.offer(60)
    assert trees.keep == 128  # 120 offered this second: one in two from now on
    trees.offer(200)
    assert trees.keep == 64  # a burst: halved until the followed ones fit (320 / 4 <= 100)
    assert trees.weight == 4
    now[0] += 1
    trees.offer(1)
    assert trees.keep == 64  # 320 last second: one in four
    now[0] += 1
    trees.offer(1)
    assert trees.keep == 128  # a quiet second: the share grows back, a doubling a second
    now[0] += 5  # a quiet while: back to every trace
    trees.offer(1)
    assert trees.keep == 256
    trees.offer(0)
    assert trees.keep == 256
