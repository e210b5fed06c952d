"""Fingerprints computed by the processor for failures that arrive without one."""

from __future__ import annotations

import re
import time

import pytest
from faultlens import semconv
from faultlens_collector.ingest import fingerprint as fp_module
from faultlens_collector.ingest.fingerprint import (
    MAX_CACHED_CHARS,
    compute_fingerprint,
    fingerprint_of,
)
from grouping_samples import SAMPLES, render
from hypothesis import given, settings
from hypothesis import strategies as st

HEX16 = re.compile(r"[0-9a-f]{16}")


def fp(name: str, seed: int, exception_type: str = "X", message: str = "m") -> str:
    return compute_fingerprint(exception_type, render(SAMPLES[name], seed), message)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_same_defect_same_fingerprint_across_hosts_lines_and_addresses(name: str) -> None:
    fingerprints = {fp(name, seed, message=f"request {seed} failed") for seed in range(30)}
    assert len(fingerprints) == 1
    assert HEX16.fullmatch(fingerprints.pop())


def test_every_sample_is_its_own_group() -> None:
    fingerprints = {fp(name, 1) for name in SAMPLES}
    assert len(fingerprints) == len(SAMPLES)


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        ("python_chained", "in create_order", "in update_order"),
        ("python_chained", "{root}/orders/pricing.py", "{root}/orders/discounts.py"),
        ("python_during_handling", "in __exit__", "in close"),
        ("python_group", "in fetch_prices", "in fetch_rates"),
        ("java_spring", "AuditLog.close", "AuditLog.flush"),
        ("java_spring", "CheckoutController.submit", "CheckoutController.confirm"),
        ("node_express", "at toInvoice", "at toReceipt"),
        ("node_esm", "src/db.mjs", "src/pool.mjs"),
        ("go_panic", "(*Store).Balance", "(*Store).Debit"),
        ("go_debug_stack", "worker.settle", "worker.refund"),
    ],
)
def test_another_application_function_is_another_defect(name: str, old: str, new: str) -> None:
    template = SAMPLES[name]
    assert old in template
    assert compute_fingerprint("X", render(template, 1), "m") != compute_fingerprint(
        "X", render(template.replace(old, new), 1), "m"
    )


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        ("python_chained", "in full_dispatch_request", "in handle_request"),
        ("java_spring", "java.util.Optional.orElseThrow", "java.util.Optional.get"),
        ("node_express", "at next (", "at dispatch ("),
        ("go_panic", "net/http.(*conn).serve", "net/http.(*conn).serveConn"),
    ],
)
def test_library_frames_do_not_count_next_to_application_frames(
    name: str, old: str, new: str
) -> None:
    """A framework upgrade that renames its internals keeps the application's groups."""
    template = SAMPLES[name]
    assert old in template
    assert fp(name, 1) == compute_fingerprint("X", render(template.replace(old, new), 1), "m")


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        ("python_library_only", "in urlopen", "in _make_request"),
        ("java_library_only", "StringBuilder.append", "StringBuilder.insert"),
        ("node_library_only", "Object.openSync", "Object.statSync"),
        ("go_library_only", "(*WaitGroup).Wait", "(*Mutex).Lock"),
    ],
)
def test_library_only_traces_use_their_library_frames(name: str, old: str, new: str) -> None:
    template = SAMPLES[name]
    assert old in template
    same_message = {fp(name, seed, message=f"m{seed}") for seed in range(5)}
    assert len(same_message) == 1  # frames, not the message, decide
    assert same_message.pop() != compute_fingerprint(
        "X", render(template.replace(old, new), 1), "m"
    )


def test_chained_cause_counts() -> None:
    template = SAMPLES["python_chained"]
    cause, rest = template.split("The above exception", 1)
    other_cause = cause.replace("in unit_price", "in list_price")
    assert fp("python_chained", 1) != compute_fingerprint(
        "X", render(other_cause + "The above exception" + rest, 1), "m"
    )


def test_exception_type_counts() -> None:
    assert fp("java_spring", 1, "java.lang.IllegalStateException") != fp(
        "java_spring", 1, "java.lang.IllegalArgumentException"
    )


def test_recursion_counts_once() -> None:
    def trace(depth: int) -> str:
        lines = ['  File "/app/walk.py", line 3, in main']
        lines += ['  File "/app/walk.py", line 9, in visit'] * depth
        return "Traceback (most recent call last):\n" + "\n".join(lines) + "\nRecursionError: x"

    assert compute_fingerprint("RecursionError", trace(1), "") == compute_fingerprint(
        "RecursionError", trace(996), ""
    )


def test_repeats_are_collapsed_after_library_frames_are_set_aside() -> None:
    """app → library → app (a callback through a library) reads as one application frame."""
    through_json = """Traceback (most recent call last):
  File "/app/enc.py", line 3, in default
  File "/usr/lib/python3.11/json/encoder.py", line 9, in iterencode
  File "/app/enc.py", line 3, in default
TypeError: x"""
    direct = """Traceback (most recent call last):
  File "/app/enc.py", line 3, in default
TypeError: x"""
    assert compute_fingerprint("TypeError", through_json, "") == compute_fingerprint(
        "TypeError", direct, ""
    )


def test_message_is_the_fallback_and_is_parameterized() -> None:
    first = compute_fingerprint("TimeoutError", "", "timeout after 30s connecting to 10.0.0.7:5432")
    second = compute_fingerprint(
        "TimeoutError", "no frames here", "timeout after 12s connecting to 10.0.0.9:5432"
    )
    other = compute_fingerprint("TimeoutError", "", "pool exhausted after 30s")
    assert first == second
    assert first != other
    assert first != compute_fingerprint(
        "OSError", "", "timeout after 30s connecting to 10.0.0.7:5432"
    )


def test_message_does_not_count_when_frames_are_read() -> None:
    assert fp("node_express", 1, message="user 1 missing") == fp(
        "node_express", 1, message="a completely different text"
    )


def test_empty_everything_still_gives_a_fingerprint() -> None:
    assert HEX16.fullmatch(compute_fingerprint("", "", ""))


# --- fingerprint_of --------------------------------------------------------------


def test_fingerprint_of_keeps_a_valid_fingerprint() -> None:
    attributes = {
        semconv.FAILURE_FINGERPRINT: "0123456789abcdef",
        semconv.EXCEPTION_TYPE: "ValueError",
    }
    assert fingerprint_of(attributes) == "0123456789abcdef"
    assert fingerprint_of({semconv.FAILURE_FINGERPRINT: " 0123456789ABCDEF "}) == (
        "0123456789abcdef"
    )


@pytest.mark.parametrize("given_value", [None, "", "psp-declined", "0123456789abcdeg", "12", 7])
def test_fingerprint_of_computes_when_there_is_no_valid_one(given_value: object) -> None:
    trace = render(SAMPLES["go_panic"], 3)
    attributes = {
        semconv.EXCEPTION_TYPE: "runtime.Error",
        semconv.EXCEPTION_STACKTRACE: trace,
        semconv.EXCEPTION_MESSAGE: "nil pointer",
    }
    if given_value is not None:
        attributes[semconv.FAILURE_FINGERPRINT] = given_value  # type: ignore[assignment]
    assert fingerprint_of(attributes) == compute_fingerprint("runtime.Error", trace, "nil pointer")


def test_fingerprint_of_tolerates_missing_and_odd_values() -> None:
    assert fingerprint_of({}) == compute_fingerprint("", "", "")
    odd = {
        semconv.EXCEPTION_TYPE: b"KeyError",
        semconv.EXCEPTION_MESSAGE: 42,
        semconv.EXCEPTION_STACKTRACE: ["not", "text"],
    }
    assert fingerprint_of(odd) == compute_fingerprint("KeyError", "['not', 'text']", "42")


# --- cost and robustness --------------------------------------------------------------


def test_repeated_traces_are_served_from_the_cache() -> None:
    fp_module.cache_clear()
    trace = render(SAMPLES["java_spring"], 4)
    first = compute_fingerprint("E", trace, "m")
    hits = fp_module._by_frames.cache_info().hits
    assert compute_fingerprint("E", "" + trace, "m") == first
    assert fp_module._by_frames.cache_info().hits == hits + 1


def test_long_traces_bypass_the_cache() -> None:
    fp_module.cache_clear()
    trace = render(SAMPLES["python_chained"], 4) + "#" * MAX_CACHED_CHARS
    assert compute_fingerprint("E", trace, "") == compute_fingerprint("E", trace, "")
    assert fp_module._by_frames.cache_info().currsize == 0


def test_huge_input_is_bounded() -> None:
    trace = render(SAMPLES["node_express"], 5) * 20_000  # about 10 MB
    start = time.perf_counter()
    assert HEX16.fullmatch(compute_fingerprint("TypeError", trace, "x" * 1_000_000))
    assert time.perf_counter() - start < 2.0


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(), st.text())
def test_compute_fingerprint_never_raises(
    exception_type: str, stacktrace: str, message: str
) -> None:
    assert HEX16.fullmatch(compute_fingerprint(exception_type, stacktrace, message))
