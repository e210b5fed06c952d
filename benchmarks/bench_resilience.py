"""Resilience layer: success-path cost and concurrency, as ratios measured in one run.

Targets (issue #4):

* breaker + retry together, metrics enabled, cost at most 1.0x the `circuitbreaker`
  package's decorator alone;
* at least 20x faster than tenacity's retry decorator;
* two threads calling a 50 ms function through one closed breaker finish in ~50 ms.

Run: ``.venv/bin/python benchmarks/bench_resilience.py`` (needs the ``bench`` extra).
Machines are shared and noisy: candidates run interleaved, each keeps its best round.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import circuitbreaker
import tenacity
from faultlens.resilience import CircuitBreaker, Retry, constant
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader


def per_call(func: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - start) / calls


def best_of(
    candidates: dict[str, tuple[Callable[[], object], int]], rounds: int
) -> dict[str, float]:
    """Interleave rounds of every candidate; keep each one's best per-call time."""
    best = dict.fromkeys(candidates, float("inf"))
    for func, calls in candidates.values():
        per_call(func, max(1, calls // 10))  # warm-up
    for _ in range(rounds):
        for name, (func, calls) in candidates.items():
            best[name] = min(best[name], per_call(func, calls))
    return best


def verdict(label: str, ratio: float, limit: float, *, at_most: bool) -> bool:
    ok = ratio <= limit if at_most else ratio >= limit
    sign = "<=" if at_most else ">="
    print(f"  {label}: {ratio:.3f}x (target {sign} {limit}x) {'OK' if ok else 'MISSED'}")
    return ok


def success_path() -> bool:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])

    def work(x: int) -> int:
        return x

    breaker = CircuitBreaker("bench", meter_provider=provider, register=False)
    policy = Retry("bench", attempts=3, backoff=constant(0.1), meter_provider=provider)
    ours = policy(breaker(work))
    breaker_only = CircuitBreaker("bench-only", meter_provider=provider, register=False)(work)
    cb = circuitbreaker.circuit(failure_threshold=5, recovery_timeout=30)(work)
    ten = tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(0.1))(work)

    n = 200_000
    timings = best_of(
        {
            "bare call": (lambda: work(1), n),
            "faultlens breaker alone": (lambda: breaker_only(1), n),
            "faultlens retry + breaker": (lambda: ours(1), n),
            "circuitbreaker decorator": (lambda: cb(1), n),
            "tenacity retry": (lambda: ten(1), n // 20),
        },
        rounds=7,
    )
    base = timings["circuitbreaker decorator"]
    print("\nsuccess path (metrics enabled: SDK MeterProvider with a reader)")
    for name, seconds in timings.items():
        print(f"  {name:<30} {seconds * 1e6:8.3f} µs/call   {seconds / base:6.3f}x circuitbreaker")
    reader.collect()  # the counts were published without a per-call Counter.add
    ok = verdict(
        "retry + breaker / circuitbreaker",
        timings["faultlens retry + breaker"] / base,
        1.0,
        at_most=True,
    )
    ok &= verdict(
        "tenacity / (retry + breaker)",
        timings["tenacity retry"] / timings["faultlens retry + breaker"],
        20.0,
        at_most=False,
    )
    provider.shutdown()
    return ok


def concurrency() -> bool:
    breaker = CircuitBreaker("bench-concurrency", register=False)

    @breaker
    def slow() -> None:
        time.sleep(0.05)

    best = float("inf")
    for _ in range(5):
        threads = [threading.Thread(target=slow) for _ in range(2)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        best = min(best, time.perf_counter() - start)
    print("\ntwo threads, one closed breaker, a 50 ms function each")
    print(f"  wall time {best * 1000:.1f} ms (serialized calls would take ~100 ms)")
    return verdict("wall time / 50 ms", best / 0.05, 1.2, at_most=True)


def main() -> int:
    ok = success_path()
    ok &= concurrency()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
