"""SDK core benchmarks (issue: foundation and SDK core).

1. Success path of a ``faultlens.capture``-decorated function vs a bare wrapt
   pass-through around the same function (target: at most 1.1x).
2. A repeated failure (same fingerprint, storm) recorded by faultlens vs
   ``Span.record_exception`` of the same exception (target: at most 0.1x).
3. ``Span.record_exception`` (what ``use_span`` and the contrib instrumentations call)
   with faultlens' span hook vs the SDK's own method, for the same fresh exception 10
   frames deep: first sight, the storm regime, and an exception faultlens already
   recorded on that span (no second event). Target: at most 1.5x in every case.
4. Memory: 100,000 distinct fingerprints leave the per-process state under 50 MB
   (with the default state cap, and with the cap raised to hold all of them).

Run: ``python benchmarks/bench_sdk.py``. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc

import faultlens
import wrapt
from _harness import compare, report, verdict
from faultlens._recorder import storm
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class _DropExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_DropExporter()))
    return provider


def bench_success_path() -> bool:
    def target(a: int, b: int) -> int:
        return a + b

    @wrapt.decorator
    def passthrough(wrapped, instance, args, kwargs):  # type: ignore[no-untyped-def]
        return wrapped(*args, **kwargs)

    bare = passthrough(target)
    captured = faultlens.capture(target)
    timings = compare(
        {
            "plain call (reference)": lambda: target(1, 2),
            "bare wrapt pass-through (baseline)": lambda: bare(1, 2),
            "faultlens.capture": lambda: captured(1, 2),
        },
        calls=200_000,
    )
    report("success path of a decorated function", timings, "bare wrapt pass-through (baseline)")
    ratio = (
        timings["faultlens.capture"].per_call
        / timings["bare wrapt pass-through (baseline)"].per_call
    )
    return verdict("capture / wrapt pass-through", ratio, 1.1)


def _raise_at_depth(depth: int) -> None:
    if depth <= 1:
        raise ValueError("invalid literal for int() with base 10: 'x'")
    _raise_at_depth(depth - 1)


def bench_storm() -> bool:
    """Both sides raise a fresh exception and record it, as in a real storm."""
    provider = _provider()
    faultlens.configure(tracer_provider=provider)
    span = provider.get_tracer("bench").start_span("storm")
    # Both sides put their event on this span: make it the current one.
    token = context.attach(trace.set_span_in_context(span))
    ok = True
    for depth in (1, 10):

        def faultlens_repeat(depth: int = depth) -> None:
            try:
                _raise_at_depth(depth)
            except ValueError as err:
                faultlens.record_failure(err)

        def otel_record_exception(depth: int = depth) -> None:
            try:
                _raise_at_depth(depth)
            except ValueError as err:
                # The span keeps at most 128 events (a bounded deque): no growth.
                span.record_exception(err)

        for _ in range(50):  # past the burst: the storm regime
            faultlens_repeat()
        timings = compare(
            {
                "Span.record_exception (baseline)": otel_record_exception,
                "faultlens.record_failure, repeated": faultlens_repeat,
            },
            calls=2_000,
        )
        report(
            f"a repeated failure (same fingerprint), raised {depth} frame(s) deep",
            timings,
            "Span.record_exception (baseline)",
        )
        ratio = (
            timings["faultlens.record_failure, repeated"].per_call
            / timings["Span.record_exception (baseline)"].per_call
        )
        ok = verdict("faultlens repeat / record_exception", ratio, 0.1) and ok
        # For reference: what a *full* recording costs (first occurrences, or storm
        # control switched off by a huge burst): classification, redaction, formatting.
        faultlens.configure(storm_burst=10**9)
        full = compare(
            {
                "Span.record_exception (baseline)": otel_record_exception,
                "faultlens.record_failure, in full": faultlens_repeat,
            },
            calls=1_000,
            rounds=3,
        )
        faultlens.configure(storm_burst=10)
        report(
            f"for reference: a full recording, {depth} frame(s) deep",
            full,
            "Span.record_exception (baseline)",
        )
    context.detach(token)
    span.end()
    faultlens.flush()
    return ok


def bench_span_hook() -> bool:
    provider = _provider()
    faultlens.configure(tracer_provider=provider)
    tracer = provider.get_tracer("bench")
    ok = True

    def record_exception() -> None:
        # A fresh span per call: the SDK keeps at most 128 events per span.
        with tracer.start_as_current_span("request") as span:
            try:
                _raise_at_depth(10)
            except ValueError as err:
                span.record_exception(err)

    def recorded_then_record_exception() -> None:
        with tracer.start_as_current_span("request") as span:
            try:
                _raise_at_depth(10)
            except ValueError as err:
                faultlens.record_failure(err)
                span.record_exception(err)

    cases = (
        ("first sight", 10**9, record_exception),
        ("storm regime", 10, record_exception),
        ("already recorded on the span", 10, recorded_then_record_exception),
    )
    for label, burst, hooked_call in cases:
        faultlens.configure(storm_burst=burst)
        for _ in range(50):  # past the burst when there is one
            hooked_call()

        def sdk_alone(call: object = hooked_call) -> None:
            faultlens.uninstall_span_hook()
            try:
                call()  # type: ignore[operator]
            finally:
                faultlens.install_span_hook()

        faultlens.install_span_hook()
        timings = compare(
            {"SDK Span.record_exception (baseline)": sdk_alone, "with the span hook": hooked_call},
            calls=1_000,
            rounds=3,
        )
        faultlens.uninstall_span_hook()
        report(f"Span.record_exception, {label}", timings, "SDK Span.record_exception (baseline)")
        ratio = (
            timings["with the span hook"].per_call
            / timings["SDK Span.record_exception (baseline)"].per_call
        )
        ok = verdict("span hook / SDK record_exception", ratio, 1.5) and ok
    faultlens.configure(storm_burst=10)
    faultlens.flush()
    return ok


def bench_memory() -> bool:
    print("\nmemory of the per-fingerprint state, 100,000 distinct fingerprints")
    ok = True
    for label, cap in (("default cap (20,000 kept)", 20_000), ("cap raised to 100,000", 100_000)):
        faultlens.set_testing(max_fingerprints=cap)  # the start-up state, with this cap
        megabytes = _state_bytes_with_cap(cap)
        kept = len(storm())
        within = megabytes < 50
        ok = ok and within
        print(
            f"  {label:<28} {megabytes:8.1f} MB, {kept} fingerprints kept (target < 50 MB) "
            f"{'OK' if within else 'MISSED'}"
        )
    return ok


def _state_bytes_with_cap(cap: int) -> float:
    faultlens.configure(tracer_provider=_provider(), max_fingerprints=cap)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for index in range(100_000):
        # A realistic message, distinct per failure, is kept as each group's sample.
        exc = ValueError(f"order {index} rejected by upstream service billing-{index % 97}")
        faultlens.record_failure(exc, fingerprint=f"fingerprint-{index}")
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / 1e6


def main() -> int:
    print(f"Python {sys.version.split()[0]}, faultlens {faultlens.__version__}")
    results = [bench_success_path(), bench_storm(), bench_span_hook(), bench_memory()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
