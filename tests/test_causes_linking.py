"""The root-cause rule on one trace (causes/linking.py)."""

from __future__ import annotations

import random

from faultlens_collector.causes.linking import SpanFacts, Verdict, link_trace
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.causes_support import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    Failure,
    at,
    formatted,
    span,
    span_id,
)


def links(verdict: Verdict) -> dict[tuple[str, str], int]:
    return {key: link.occurrences for key, link in verdict.links.items()}


def cascade(*, cart_status: int = STATUS_ERROR, client_spans: bool = True) -> list[SpanFacts]:
    """checkout → cart → pricing: pricing times out, cart raises UpstreamError, checkout 500s.

    Span 1 checkout server, 2 checkout's client call to cart, 3 cart server, 4 cart's
    client call to pricing, 5 pricing server.
    """
    pricing = Failure("pricing", at(60), exception_type="TimeoutError", service="pricing")
    cart = Failure("cart", at(70), exception_type="cart.UpstreamError", service="cart")
    checkout = Failure("checkout", at(80), exception_type="CheckoutError", service="checkout")
    spans = [
        span(1, None, 0, 100, checkout, service="checkout"),
        span(3, 2, 10, 75, cart, status=cart_status, service="cart"),
        span(5, 4, 20, 65, pricing, service="pricing"),
    ]
    if client_spans:
        spans += [
            span(2, 1, 5, 76, service="checkout"),
            span(4, 3, 15, 66, service="cart"),
        ]
    return spans


def test_the_issue_example_names_pricing_the_root() -> None:
    verdict = link_trace(cascade())
    assert verdict.root == "pricing"
    assert verdict.root_service == "pricing"
    assert links(verdict) == {("pricing", "cart"): 1, ("pricing", "checkout"): 1}
    assert verdict.roles == {"pricing": "root", "cart": "symptom", "checkout": "symptom"}
    assert verdict.links["pricing", "cart"].services == {"cart"}


def test_input_order_does_not_matter() -> None:
    spans = cascade()
    expected = links(link_trace(spans))
    for seed in range(20):
        shuffled = spans[:]
        random.Random(seed).shuffle(shuffled)
        assert links(link_trace(shuffled)) == expected


def test_missing_intermediate_spans_later_failures_on_the_call_path_count() -> None:
    verdict = link_trace(cascade(client_spans=False))
    assert verdict.root == "pricing"
    assert links(verdict) == {("pricing", "cart"): 1, ("pricing", "checkout"): 1}


def test_across_a_guessed_link_an_earlier_failure_is_not_a_symptom() -> None:
    early = Failure("early", at(2), service="checkout")
    spans = cascade(client_spans=False)
    spans[0] = span(1, None, 0, 100, early, service="checkout")
    verdict = link_trace(spans)
    assert links(verdict) == {("pricing", "cart"): 1}


def test_a_span_that_ended_ok_absorbs_the_failure() -> None:
    """cart caught the timeout, logged it (a handled failure) and answered with a
    fallback: checkout's later failure is unrelated."""
    spans = cascade(cart_status=STATUS_UNSET)
    handled = Failure("cart-logged", at(68), handled=True, service="cart")
    spans[1] = span(3, 2, 10, 75, handled, status=STATUS_UNSET, service="cart")
    spans[3] = span(2, 1, 5, 76, status=STATUS_OK, service="checkout")  # the call succeeded
    verdict = link_trace(spans)
    assert links(verdict) == {("pricing", "cart-logged"): 1}
    assert verdict.roles["checkout"] == ""
    assert verdict.root == "pricing"


def test_an_absorbing_span_without_failures_stops_it_too() -> None:
    spans = cascade()
    spans[3] = span(2, 1, 5, 76, status=STATUS_OK, service="checkout")
    verdict = link_trace(spans)
    assert links(verdict) == {("pricing", "cart"): 1}


def test_a_handled_failure_on_an_ok_span_does_not_leave_it() -> None:
    noise = Failure("noise", at(30), handled=True, service="inventory")
    root = Failure("root", at(40), service="inventory")
    top = Failure("top", at(90), service="checkout")
    spans = [
        span(1, None, 0, 100, top, service="checkout"),
        span(2, 1, 10, 35, noise, status=STATUS_UNSET, service="inventory"),
        span(3, 1, 36, 50, root, service="inventory"),
    ]
    verdict = link_trace(spans)
    assert links(verdict) == {("root", "top"): 1}
    assert verdict.root == "root"


def test_a_failure_logged_before_the_call_started_is_not_a_symptom() -> None:
    before = Failure("before", at(3), handled=True, service="checkout")
    spans = cascade()
    spans[0] = span(
        1, None, 0, 100, before, Failure("checkout", at(80), service="checkout"), service="checkout"
    )
    verdict = link_trace(spans)
    assert ("pricing", "before") not in verdict.links
    assert ("pricing", "checkout") in verdict.links


def _wrap_timeout() -> None:
    try:
        raise TimeoutError("pricing timed out")
    except TimeoutError as exc:
        raise RuntimeError("upstream") from exc


def _chained_stack() -> str:
    return formatted(_wrap_timeout)


def test_exception_chain_inside_one_span() -> None:
    timeout = Failure("timeout", at(10), handled=True, exception_type="TimeoutError")
    wrapped = Failure("wrapped", at(11), exception_type="RuntimeError", stacktrace=_chained_stack())
    verdict = link_trace([span(1, None, 0, 20, timeout, wrapped)])
    assert links(verdict) == {("timeout", "wrapped"): 1}
    assert verdict.root == "timeout"


def test_the_chain_counts_only_for_an_earlier_failure() -> None:
    wrapped = Failure("wrapped", at(10), exception_type="RuntimeError", stacktrace=_chained_stack())
    later = Failure("later", at(11), handled=True, exception_type="TimeoutError")
    assert link_trace([span(1, None, 0, 20, wrapped, later)]).links == {}


def test_unchained_failures_on_one_span_are_not_linked() -> None:
    first = Failure("first", at(10), handled=True, exception_type="KeyError")
    second = Failure("second", at(11), exception_type="ValueError", stacktrace="Traceback ...")
    verdict = link_trace([span(1, None, 0, 20, first, second)])
    assert verdict.links == {}
    assert verdict.root == "first"  # no root explains anything: the earliest failure


def test_a_chained_handled_failure_leaves_its_span_through_the_exception_it_caused() -> None:
    timeout = Failure("timeout", at(10), handled=True, exception_type="TimeoutError", service="a")
    wrapped = Failure(
        "wrapped", at(11), exception_type="RuntimeError", stacktrace=_chained_stack(), service="a"
    )
    top = Failure("top", at(30), service="b")
    verdict = link_trace(
        [span(1, None, 0, 40, top, service="b"), span(2, 1, 5, 20, timeout, wrapped, service="a")]
    )
    assert links(verdict) == {("timeout", "wrapped"): 1, ("timeout", "top"): 1}


def test_retries_the_earliest_attempt_is_the_root() -> None:
    attempts = [
        span(10 + n, 2, 10 + 20 * n, 25 + 20 * n, Failure("pricing", at(24 + 20 * n)))
        for n in range(3)
    ]
    cart = span(2, 1, 5, 80, Failure("cart", at(78)))
    verdict = link_trace([span(1, None, 0, 100), cart, *attempts])
    assert links(verdict) == {("pricing", "cart"): 1}
    assert verdict.root == "pricing"


def test_the_same_defect_on_nested_spans_is_no_link() -> None:
    inner = Failure("same", at(10))
    outer = Failure("same", at(11))
    verdict = link_trace([span(1, None, 0, 20, outer), span(2, 1, 5, 15, inner)])
    assert verdict.links == {}
    assert verdict.roles == {"same": ""}


def test_two_roots_each_symptom_goes_to_the_earliest_that_reaches_it() -> None:
    a = Failure("a", at(10), service="a")
    b = Failure("b", at(20), service="b")
    a_up = Failure("a-up", at(30), service="mid")
    top = Failure("top", at(90), service="top")
    spans = [
        span(1, None, 0, 100, top, service="top"),
        span(2, 1, 5, 40, a_up, service="mid"),
        span(3, 2, 6, 15, a, service="a"),
        span(4, 1, 16, 25, b, service="b"),
    ]
    verdict = link_trace(spans)
    assert links(verdict) == {("a", "a-up"): 1, ("a", "top"): 1}
    assert verdict.roles["b"] == ""
    assert verdict.root == "a"


def test_counts_are_occurrences() -> None:
    spans = [
        span(1, None, 0, 100, Failure("top", at(90), count=7)),
        span(2, 1, 5, 50, Failure("root", at(10))),
    ]
    assert links(link_trace(spans)) == {("root", "top"): 7}


def test_duplicate_spans_count_once() -> None:
    spans = cascade()
    assert links(link_trace(spans + spans)) == links(link_trace(spans))


def test_no_failures_and_one_failure() -> None:
    assert link_trace([span(1, None, 0, 10)]) == Verdict()
    alone = link_trace([span(1, None, 0, 10, Failure("alone", at(5)))])
    assert alone.root == "alone"
    assert alone.links == {}


def test_guessed_links_cannot_loop() -> None:
    # Two spans whose parents never arrived, with identical times: each encloses the other.
    a = span(1, 100, 0, 10, Failure("a", at(5)))
    b = span(2, 200, 0, 10, Failure("b", at(6)))
    verdict = link_trace([a, b])
    assert len(verdict.links) <= 1


def test_a_parent_cycle_in_the_input_does_not_hang() -> None:
    a = span(1, 2, 0, 10, Failure("a", at(5)))
    b = span(2, 1, 0, 10, Failure("b", at(6)))
    link_trace([a, b])  # returns


def test_a_deep_trace() -> None:
    depth = 3000
    spans = [
        span(n, n - 1 if n > 1 else None, n, 2 * depth - n, Failure(f"f{n % 7}", at(2 * depth - n)))
        for n in range(1, depth + 1)
    ]
    verdict = link_trace(spans)
    assert verdict.root == f"f{depth % 7}"


# --- properties ----------------------------------------------------------------------


@st.composite
def traces(draw: st.DrawFn) -> list[SpanFacts]:
    """Random trees: times nested in the parent's, random status, a few failures."""
    count = draw(st.integers(1, 12))
    spans: list[SpanFacts] = []
    bounds: dict[int, tuple[float, float]] = {}
    for number in range(1, count + 1):
        parent = draw(st.sampled_from([None, *bounds])) if bounds else None
        low, high = bounds.get(parent, (0.0, 1000.0)) if parent is not None else (0.0, 1000.0)
        start = draw(st.floats(low, high))
        end = draw(st.floats(start, high))
        bounds[number] = (start, end)
        failures = [
            Failure(
                draw(st.sampled_from("abcde")),
                at(draw(st.floats(start, end))),
                handled=draw(st.sampled_from([True, False, None])),
                count=draw(st.integers(1, 3)),
            )
            for _ in range(draw(st.integers(0, 2)))
        ]
        status = draw(st.sampled_from([STATUS_ERROR, STATUS_OK, STATUS_UNSET]))
        spans.append(span(number, parent, start, end, *failures, status=status))
    return spans


@settings(max_examples=150, deadline=None)
@given(traces(), st.randoms(use_true_random=False))
def test_properties(spans: list[SpanFacts], rng: random.Random) -> None:
    verdict = link_trace(spans)
    failures = [failure for span in spans for failure in span.failures]
    # The same verdict whatever the arrival order.
    shuffled = spans[:]
    rng.shuffle(shuffled)
    assert links(link_trace(shuffled)) == links(verdict)
    assert link_trace(shuffled).root == verdict.root
    # Every failure has a role; a link never ties a group to itself; never more
    # explained than occurred.
    assert set(verdict.roles) == {failure.fingerprint for failure in failures}
    for cause, symptom in verdict.links:
        assert cause != symptom
        assert verdict.roles[symptom] == "symptom"
    assert sum(link.occurrences for link in verdict.links.values()) <= sum(
        failure.count for failure in failures
    )
    if failures:
        assert verdict.root in verdict.roles
    # Nothing passes a span that absorbs everything: with every span OK and every failure
    # handled, only same-span chains could link (there are none here).
    calm = [
        span_.__class__(
            span_.span_id,
            span_.parent_id,
            span_.start,
            span_.end,
            STATUS_OK,
            span_.service,
            tuple(Failure(f.fingerprint, f.time_unix_nano, handled=True) for f in span_.failures),
        )
        for span_ in spans
    ]
    assert link_trace(calm).links == {}


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[SpanFacts], list[int]]:
    """A call chain (no branches), every span ERROR, a failure on some, later further up."""
    depth = draw(st.integers(2, 10))
    spans = []
    for level in range(depth):  # level 0 is the trace root, the deepest is depth - 1
        number = level + 1
        failures = ()
        if level == depth - 1 or draw(st.booleans()):
            failures = (Failure(f"level{level}", at(2000 - 10 * level)),)
        spans.append(
            span(
                number, number - 1 if level else None, 10 * level, 2000 - 10 * level + 5, *failures
            )
        )
    missing = [
        index for index, item in enumerate(spans) if not item.failures and draw(st.booleans())
    ]
    return spans, missing


@settings(max_examples=200, deadline=None)
@given(chains())
def test_a_cascade_up_a_chain_and_missing_spans(case: tuple[list[SpanFacts], list[int]]) -> None:
    spans, missing = case
    verdict = link_trace(spans)
    deepest = f"level{len(spans) - 1}"
    assert verdict.root == deepest
    failing = [item for item in spans if item.failures]
    assert set(links(verdict)) == {(deepest, item.failures[0].fingerprint) for item in failing[:-1]}
    # The spans in between may be missing: the same verdict from what is left.
    kept = [item for index, item in enumerate(spans) if index not in missing]
    assert links(link_trace(kept)) == links(verdict)


# --- the finer points -------------------------------------------------------------------


def test_a_failure_logged_while_the_call_was_still_running_is_not_its_symptom() -> None:
    """checkout logged a tolerated recommendations failure while the cart call it made
    in parallel was still running: that log is not a symptom of cart's failure."""
    logged = Failure("logged", at(30), handled=True, service="checkout")
    checkout = Failure("checkout", at(80), service="checkout")
    spans = cascade()
    spans[0] = span(1, None, 0, 100, logged, checkout, service="checkout")
    verdict = link_trace(spans)
    assert ("pricing", "logged") not in verdict.links
    assert ("pricing", "checkout") in verdict.links


def test_a_failure_caught_and_logged_goes_no_further() -> None:
    """recommendations failed; checkout logged it and went on; later checkout failed of
    something else (its own AttributeError): that is no symptom of recommendations."""
    timeout = Failure("rec-timeout", at(5), service="recommendations")
    fallback = Failure("no-recs", at(7), handled=True, service="checkout")
    own = Failure("attribute", at(60), exception_type="AttributeError", service="checkout")
    spans = [
        span(1, None, 0, 100, Failure("gateway", at(95), service="gateway"), service="gateway"),
        span(2, 1, 1, 90, fallback, own, service="checkout"),
        span(3, 2, 2, 6.5, service="checkout"),  # the client call, ERROR (a 500)
        span(4, 3, 3, 6, timeout, service="recommendations"),
    ]
    verdict = link_trace(spans)
    assert links(verdict) == {("rec-timeout", "no-recs"): 1, ("attribute", "gateway"): 1}
    assert verdict.root == "attribute"  # what took the request down


def test_logged_then_raised_again_goes_on() -> None:
    """The SDK records an exception once: logged (handled) and re-raised leaves only the
    handled record on a span that ended ERROR — it still travels up."""
    root = Failure("root", at(10), service="a")
    logged = Failure("logged", at(12), handled=True, service="b")
    top = Failure("top", at(30), service="c")
    spans = [
        span(1, None, 0, 40, top, service="c"),
        span(2, 1, 5, 20, logged, service="b"),
        span(3, 2, 8, 11, root, service="a"),
    ]
    assert links(link_trace(spans)) == {("root", "logged"): 1, ("root", "top"): 1}


def test_inside_one_process_a_missing_span_that_caught_the_exception() -> None:
    """An internal span's escaped exception, its parent (not received) caught it; the
    handler failed later of another exception: not a symptom."""
    miss = Failure("miss", at(3), exception_type="CacheMiss", service="checkout")
    later = Failure("later", at(50), exception_type="CheckoutFailed", service="checkout")
    spans = [
        span(1, None, 0, 60, later, service="checkout"),
        SpanFacts(span_id(3), span_id(2), at(2), at(4), STATUS_ERROR, "checkout", (miss,), 1),
    ]
    assert link_trace(spans).links == {}
    # ... but the same exception, or one raised from it, seen higher up is.
    wrapped = Failure(
        "wrapped",
        at(50),
        exception_type="RuntimeError",
        stacktrace=(
            'Traceback (most recent call last):\n  File "c.py", line 1, in get\n    get()\n'
            "CacheMiss: x\n\nThe above exception was the direct cause of the following "
            'exception:\n\nTraceback (most recent call last):\n  File "a.py", line 1, in f\n'
            "    f()\nRuntimeError: y\n"
        ),
        service="checkout",
    )
    spans[0] = span(1, None, 0, 60, wrapped, service="checkout")
    assert links(link_trace(spans)) == {("miss", "wrapped"): 1}


def test_a_missing_parent_is_guessed_from_the_caller_that_reacted() -> None:
    """Only failing spans arrive. recommendations ran in parallel with cart; its span sits
    inside cart's in time, but checkout is the one that reacted to its failure at once."""
    rec = Failure("rec", at(10), service="recommendations")
    no_recs = Failure("no-recs", at(11), handled=True, service="checkout")
    cart_failure = Failure("cart-logged", at(60), handled=True, service="cart")
    spans = [
        span(1, None, 0, 100, no_recs, service="checkout"),
        span(2, 91, 4, 80, cart_failure, status=STATUS_OK, service="cart"),
        span(3, 92, 5, 10.5, rec, service="recommendations"),
    ]
    assert links(link_trace(spans)) == {("rec", "no-recs"): 1}


def test_a_client_span_whose_callee_arrived_is_no_guessed_parent() -> None:
    rec = Failure("rec", at(10), service="recommendations")
    top = Failure("top", at(95), handled=True, service="checkout")
    cart = Failure("cart", at(70), handled=True, service="cart")
    client = SpanFacts(span_id(2), span_id(1), at(4), at(80), STATUS_UNSET, "checkout", (), 3)
    spans = [
        span(1, None, 0, 100, top, service="checkout"),
        client,  # checkout's call to cart, which answered
        span(5, 2, 7, 79, cart, status=STATUS_UNSET, service="cart"),
        span(3, 92, 5, 10.5, rec, service="recommendations"),
    ]
    verdict = link_trace(spans)
    # Under the OK client span rec would have been absorbed; under checkout it reaches top.
    assert links(verdict) == {("rec", "top"): 1}


def test_an_internal_span_is_guessed_under_its_own_service_only() -> None:
    inner = Failure("inner", at(3), exception_type="E", service="a")
    other = Failure("other", at(8), exception_type="E", service="b", handled=True)
    own = Failure("own", at(40), exception_type="E", service="a", handled=True)
    spans = [
        span(1, None, 0, 50, own, service="a"),
        span(2, 70, 1, 10, other, status=STATUS_OK, service="b"),  # encloses inner in time
        SpanFacts(span_id(3), span_id(60), at(2), at(4), STATUS_ERROR, "a", (inner,), 1),
    ]
    verdict = link_trace(spans)
    assert ("inner", "other") not in verdict.links
    assert ("inner", "own") in verdict.links


def test_the_trace_root_is_what_took_the_request_down() -> None:
    """Two small cascades: an early one absorbed low in the trace, a later one that
    reached the top. The trace's root is the one that reached the top."""
    early = Failure("early", at(5), service="rec")
    early_logged = Failure("early-logged", at(7), handled=True, service="checkout")
    late = Failure("late", at(40), service="pricing")
    top = Failure("top", at(95), service="gateway")
    spans = [
        span(1, None, 0, 100, top, service="gateway"),
        span(2, 1, 1, 90, early_logged, Failure("checkout", at(88), service="checkout")),
        span(3, 2, 2, 6, early, service="rec"),
        span(4, 2, 20, 50, late, service="pricing"),
    ]
    verdict = link_trace(spans)
    assert verdict.root == "late"
    assert ("early", "early-logged") in verdict.links


def test_a_symptom_is_explained_by_the_call_that_failed_last_before_it() -> None:
    """Two failed calls reach the same handler failure; the one that came back last
    before it was raised made the handler give up."""
    first = Failure("first", at(5), service="a")
    second = Failure("second", at(50), service="b")
    top = Failure("top", at(61), service="top")
    spans = [
        span(1, None, 0, 70, top, service="top"),
        span(2, 1, 1, 10, first, service="a"),
        span(3, 1, 20, 60, second, service="b"),
    ]
    verdict = link_trace(spans)
    assert links(verdict) == {("second", "top"): 1}
