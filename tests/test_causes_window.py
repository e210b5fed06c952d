"""Per-trace state over a bounded window (causes/window.py) and link counting (causes/links.py)."""

from __future__ import annotations

import random

import pytest
from faultlens_collector.causes.linking import LOGGED, SpanFacts, link_trace
from faultlens_collector.causes.links import changes
from faultlens_collector.causes.window import Decision, TraceWindow, WindowSettings
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.causes_support import STATUS_OK, Failure, at, span, span_id
from tests.test_causes_linking import cascade


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def window(clock: Clock, **overrides: float) -> TraceWindow:
    values = {"settle_seconds": 5.0, "window_seconds": 30.0, **overrides}
    return TraceWindow(WindowSettings(**values), clock=clock)  # type: ignore[arg-type]


T1, T2 = b"\x01" * 16, b"\x02" * 16


def totals(decisions: list[Decision]) -> dict[tuple[str, str], tuple[int, int]]:
    return {key: (change.traces, change.occurrences) for key, change in changes(decisions).items()}


def test_a_trace_is_decided_once_it_settles() -> None:
    clock = Clock()
    held = window(clock)
    spans = cascade()
    held.add(T1, spans[:2])
    clock.now += 4
    held.add(T1, spans[2:])
    clock.now += 4
    assert held.collect() == []  # news 4 s ago: not settled
    assert held.pending(T1)
    clock.now += 1.5
    (decision,) = held.collect()
    assert decision.trace_id == T1
    assert decision.previous is None
    assert decision.verdict.root == "pricing"
    assert totals([decision]) == {("pricing", "cart"): (1, 1), ("pricing", "checkout"): (1, 1)}
    assert not held.pending(T1)
    assert held.collect() == []


def test_a_late_root_takes_over_its_symptoms() -> None:
    clock = Clock()
    held = window(clock)
    spans = cascade(client_spans=False)
    held.add(T1, spans[:2])  # checkout and cart first: cart looks like the root
    clock.now += 6
    first = held.collect()
    assert totals(first) == {("cart", "checkout"): (1, 1)}
    held.add(T1, spans[2:])  # pricing arrives late, within the window
    clock.now += 6
    second = held.collect()
    assert second[0].previous is not None
    assert totals(first + second) == {
        ("pricing", "cart"): (1, 1),
        ("pricing", "checkout"): (1, 1),
    }


def test_the_window_drops_a_trace_and_decides_it_first() -> None:
    clock = Clock()
    held = window(clock, settle_seconds=5, window_seconds=10)
    spans = cascade()
    for item in spans:
        held.add(T1, [item])
        clock.now += 3  # never settles: news every 3 s
    clock.now += 0.5
    decisions = held.collect()
    assert len(held) == 0
    assert totals(decisions) == {("pricing", "cart"): (1, 1), ("pricing", "checkout"): (1, 1)}
    held.add(T1, [span(9, 1, 1, 2, Failure("after", at(1)))])  # after the window: a new trace
    assert len(held) == 1


def test_memory_bounds() -> None:
    clock = Clock()
    held = window(clock)
    held = TraceWindow(WindowSettings(max_traces=3, max_spans=2), clock=clock)
    for number in range(5):
        trace_id = number.to_bytes(16, "big")
        held.add(trace_id, [span(1, None, 0, 10, Failure(f"f{number}", at(1)))])
    assert len(held) == 3
    assert held.evicted_traces == 2
    held.add(T1, [span(n, None, 0, 10) for n in range(1, 5)])
    assert held.dropped_spans == 2
    assert held.spans <= 3 + 2


def test_an_evicted_trace_is_decided() -> None:
    clock = Clock()
    held = TraceWindow(WindowSettings(max_traces=1), clock=clock)
    held.add(T1, cascade())
    held.add(T2, [span(1, None, 0, 10, Failure("other", at(1)))])
    assert totals(held.collect()) == {
        ("pricing", "cart"): (1, 1),
        ("pricing", "checkout"): (1, 1),
    }


def test_wanted_parents() -> None:
    clock = Clock()
    held = window(clock)
    root = span(5, 4, 20, 65, Failure("pricing", at(60)))
    held.add(T1, [root])
    assert set(held.wanted()) == {span_id(4)}  # the failure left its span: its caller matters
    held.add(T1, [span(4, 3, 15, 66)])  # an ERROR client span: passes it on
    assert set(held.wanted()) == {span_id(3)}
    held.add(T1, [span(3, 2, 10, 75, status=STATUS_OK)])  # absorbed: nothing above matters
    assert held.wanted() == {}
    absorbed = span(7, 6, 0, 5, Failure("logged", at(1), handled=True), status=STATUS_OK)
    held.add(T2, [absorbed])
    assert held.wanted() == {}  # a failure that did not leave its span wants nothing
    held.add(T2, [span(8, 6, 0, 5, Failure("escaped", at(1)))])
    assert set(held.wanted()) == {span_id(6)}
    clock.now += 31
    held.collect()
    assert held.wanted() == {}  # gone with their traces


def test_watch_reports_a_trace_without_links() -> None:
    clock = Clock()
    held = window(clock)
    held.add(T1, [span(1, None, 0, 10, Failure("alone", at(1)))])
    held.watch(T1, "alone")
    held.watch(T1, "alone")
    held.watch(T2, "early")  # watched before any of its spans arrived
    clock.now += 6
    decisions = {decision.trace_id: decision for decision in held.collect()}
    assert decisions[T1].watched == ("alone",)
    assert decisions[T1].verdict.root == "alone"
    assert decisions[T2].watched == ("early",)
    assert decisions[T2].verdict.root == ""
    held.add(T2, [span(1, None, 0, 10, Failure("quiet", at(1)))])
    clock.now += 6
    assert held.collect() == []  # nothing to report: no link, nobody watching any more


def test_collect_everything_at_shutdown() -> None:
    clock = Clock()
    held = window(clock)
    held.add(T1, cascade())
    assert totals(held.collect(everything=True)) == {
        ("pricing", "cart"): (1, 1),
        ("pricing", "checkout"): (1, 1),
    }
    assert len(held) == 0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="settle"):
        WindowSettings(settle_seconds=10, window_seconds=5)
    with pytest.raises(ValueError, match="max_traces"):
        WindowSettings(max_traces=0)


@settings(max_examples=100, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 4))
def test_arrival_order_and_timing_do_not_change_the_final_counts(
    rng: random.Random, traces: int
) -> None:
    """Spans of several traces arrive in random order, at random times within the window,
    split into random requests: the links summed over every decision (late arrivals
    included) are those of deciding each complete trace once."""
    clock = Clock()
    held = window(clock, window_seconds=200)  # every span arrives within its trace's window
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    arrivals: list[tuple[bytes, object]] = []
    for number in range(traces):
        spans = cascade(client_spans=rng.random() < 0.5)
        trace_id = number.to_bytes(16, "big")
        for key, link in link_trace(spans).links.items():
            traces_so_far, occurrences = expected.get(key, (0, 0))
            expected[key] = (traces_so_far + 1, occurrences + link.occurrences)
        arrivals += [(trace_id, item) for item in spans]
    rng.shuffle(arrivals)
    decisions: list[Decision] = []
    while arrivals:
        size = rng.randint(1, 3)
        batch, arrivals = arrivals[:size], arrivals[size:]
        held.add_many(batch)  # type: ignore[arg-type]
        clock.now += rng.choice([0.1, 1.0, 6.0])  # sometimes long enough to settle
        decisions += held.collect()
    clock.now += 201
    decisions += held.collect()
    assert totals(decisions) == expected


def test_a_trace_followed_under_load_counts_for_its_weight() -> None:
    clock = Clock()
    held = window(clock)
    held.weight = 4  # one trace in four is followed
    held.add(T1, cascade())
    clock.now += 6
    (decision,) = held.collect()
    assert decision.weight == 4
    assert totals([decision]) == {("pricing", "cart"): (4, 4), ("pricing", "checkout"): (4, 4)}


def test_a_logged_failure_takes_its_span_s_place_once_the_span_arrives() -> None:
    clock = Clock()
    held = window(clock)
    logged = Failure("logged", at(5), service="cart")
    placeholder = SpanFacts(span_id(3), b"", at(5), at(5), 0, "cart", (logged,), LOGGED)
    held.add(T1, [placeholder])
    assert span_id(3) in held.wanted()  # its span gives it a place in the tree
    held.add(T1, [placeholder])  # the same record sent again: counted once
    arrived = span(3, 2, 1, 10, service="cart")  # the span itself, no event, ERROR
    held.add(T1, [arrived])
    assert span_id(3) not in held.wanted()
    assert span_id(2) in held.wanted()  # now it passes a failure on: its caller matters
    clock.now += 6
    held.watch(T1, "logged")
    clock.now += 6
    (decision,) = held.collect()
    assert decision.verdict.failures == 1
    # ... and in the other order: the span first (wanted by an earlier failure), then the log.
    held.add(T2, [arrived._replace(failures=()), placeholder])
    held.watch(T2, "logged")
    clock.now += 6
    (decision,) = held.collect()
    assert decision.verdict.failures == 1
