"""What fingerprinting a failure that arrives without one costs the processor.

For one realistic trace per language (tests/grouping_samples.py), against
``hashlib.sha256`` of the same text measured in the same run:

1. a repeat — a trace seen before, served from the cache (the common case: the
   same defect fails again and again);
2. a first sight — the trace is parsed (cache cleared before every call);
3. the message fallback (no frames), repeated and first seen, and
   ``fingerprint_of`` with a valid ``failure.fingerprint`` (the faultlens SDK's
   case).

Every call gets a *fresh* string object with the same content, as the processor
does (each OTLP request decodes new strings), so string hashing is paid every
time and not cached on the object.

Run: ``python benchmarks/bench_grouping.py``. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from _harness import compare, report, verdict
from faultlens import semconv
from faultlens_collector.ingest import fingerprint as fp_module
from faultlens_collector.ingest.fingerprint import compute_fingerprint, fingerprint_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from grouping_samples import SAMPLES, render

CALLS = 4_000
ROUNDS = 7
#: A repeat may cost at most this many times a sha256 of the same text ...
REPEAT_RATIO_LIMIT = 1.0
#: ... and at most this many microseconds.
REPEAT_MICROS_LIMIT = 2.0


def fresh(text: str) -> Iterator[str]:
    """Endless distinct string objects equal to ``text`` (none has its hash cached)."""
    head, last = text[:-1], text[-1]
    while True:
        yield head + last


def candidate(func: Callable[[str], object], text: str) -> Callable[[], object]:
    copies = fresh(text)
    return lambda: func(next(copies))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def repeat(exception_type: str) -> Callable[[str], object]:
    return lambda text: compute_fingerprint(exception_type, text, "")


def first_sight(exception_type: str) -> Callable[[str], object]:
    def call(text: str) -> object:
        fp_module.cache_clear()
        return compute_fingerprint(exception_type, text, "")

    return call


def bench_trace(name: str, exception_type: str) -> list[bool]:
    text = render(SAMPLES[name], 1)
    timings = compare(
        {
            "sha256 of the text (baseline)": candidate(sha256, text),
            "repeat (cached)": candidate(repeat(exception_type), text),
            "first sight (parsed)": candidate(first_sight(exception_type), text),
        },
        calls=CALLS,
        rounds=ROUNDS,
    )
    title = f"{name}: {len(text)} chars, {text.count(chr(10))} lines"
    report(title, timings, "sha256 of the text (baseline)")
    base = timings["sha256 of the text (baseline)"].per_call
    cached = timings["repeat (cached)"]
    return [
        verdict("repeat vs sha256", cached.per_call / base, REPEAT_RATIO_LIMIT),
        within("repeat", cached.micros, REPEAT_MICROS_LIMIT),
    ]


def within(label: str, micros: float, limit: float) -> bool:
    ok = micros <= limit
    print(f"  {label}: {micros:.2f} µs (target <= {limit} µs) {'OK' if ok else 'MISSED'}")
    return ok


def message_first_sight(message: str) -> object:
    fp_module.cache_clear()
    return compute_fingerprint("TimeoutError", "", message)


def bench_other_paths() -> None:
    message = "timeout after 30s connecting to 10.0.0.7:5432 (request 8f14e45f-ceea-467a-9af0)"
    given = {
        semconv.FAILURE_FINGERPRINT: "0123456789abcdef",
        semconv.EXCEPTION_TYPE: "TimeoutError",
    }
    timings = compare(
        {
            "sha256 of the message (baseline)": candidate(sha256, message),
            "message fallback, repeat (cached)": candidate(
                lambda m: compute_fingerprint("TimeoutError", "", m), message
            ),
            "message fallback, first sight": candidate(message_first_sight, message),
            "fingerprint_of, valid failure.fingerprint": lambda: fingerprint_of(given),
        },
        calls=CALLS * 5,
        rounds=ROUNDS,
    )
    report("other paths", timings, "sha256 of the message (baseline)")


def main() -> int:
    results: list[bool] = []
    for name, exception_type in (
        ("python_chained", "orders.pricing.PricingError"),
        ("java_spring", "org.springframework.web.util.NestedServletException"),
        ("node_express", "TypeError"),
        ("go_panic", "runtime.Error"),
    ):
        results += bench_trace(name, exception_type)
    bench_other_paths()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
