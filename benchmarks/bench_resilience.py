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

import circuitbreaker
import tenacity
from _harness import compare, report, verdict
from faultlens.resilience import CircuitBreaker, Retry, constant
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader


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

    timings = compare(
        {
            "bare call": lambda: work(1),
            "faultlens breaker alone": lambda: breaker_only(1),
            "faultlens retry + breaker": lambda: ours(1),
            "circuitbreaker decorator": lambda: cb(1),
            "tenacity retry": lambda: ten(1),
        },
        calls=50_000,
    )
    report(
        "success path (metrics enabled: SDK MeterProvider with a reader)",
        timings,
        baseline="circuitbreaker decorator",
    )
    reader.collect()  # the counts were published without a per-call Counter.add
    ok = verdict(
        "retry + breaker / circuitbreaker",
        timings["faultlens retry + breaker"].per_call
        / timings["circuitbreaker decorator"].per_call,
        1.0,
    )
    ok &= verdict(
        "tenacity / (retry + breaker)",
        timings["tenacity retry"].per_call / timings["faultlens retry + breaker"].per_call,
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
    return verdict("wall time / 50 ms", best / 0.05, 1.2)


def main() -> int:
    ok = success_path()
    ok &= concurrency()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
