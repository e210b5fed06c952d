"""Timing helpers shared by the benchmarks.

Machines here are shared and noisy: every benchmark measures its baseline in
the same run, interleaving candidate and baseline rounds, and reports the
ratio of the *minimum* per-call times (the least-disturbed round of each).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Best observed cost of one call, in seconds."""

    name: str
    per_call: float

    @property
    def micros(self) -> float:
        return self.per_call * 1e6


def per_call(func: Callable[[], object], calls: int) -> float:
    """Seconds per call of ``func`` over ``calls`` calls (loop overhead included once)."""
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - start) / calls


def compare(
    candidates: dict[str, Callable[[], object]], *, calls: int, rounds: int = 7
) -> dict[str, Timing]:
    """Interleave ``rounds`` rounds of every candidate; keep each one's best round."""
    best = {name: float("inf") for name in candidates}
    for func in candidates.values():  # warm up caches and lazy initialisation
        per_call(func, max(1, calls // 10))
    for _ in range(rounds):
        for name, func in candidates.items():
            best[name] = min(best[name], per_call(func, calls))
    return {name: Timing(name, value) for name, value in best.items()}


def report(title: str, timings: dict[str, Timing], baseline: str) -> None:
    """Print each candidate's cost and its ratio to ``baseline``."""
    base = timings[baseline].per_call
    print(f"\n{title}")
    for timing in timings.values():
        print(f"  {timing.name:<44} {timing.micros:10.3f} µs/call   {timing.per_call / base:6.3f}x")


def verdict(label: str, ratio: float, limit: float, *, at_most: bool = True) -> bool:
    """Print whether ``ratio`` meets ``limit``; return True if it does."""
    ok = ratio <= limit if at_most else ratio >= limit
    sign = "<=" if at_most else ">="
    print(f"  {label}: {ratio:.3f}x (target {sign} {limit}x) {'OK' if ok else 'MISSED'}")
    return ok


@dataclass(frozen=True)
class PairedRatio:
    """Median and quartiles of the ratios of adjacent candidate/baseline runs."""

    median: float
    low: float
    high: float


def paired_ratio(
    baseline: Callable[[int], object],
    candidate: Callable[[int], object],
    *,
    chunk: int,
    pairs: int,
) -> PairedRatio:
    """``candidate(chunk)`` time over ``baseline(chunk)`` time, run back to back ``pairs``
    times (alternating which goes first); the median ratio and its quartiles.

    For effects of ~1% on a machine whose speed changes under load (another tenant
    on the sibling hyperthread halves it), where a ratio of best rounds measures the
    load more than the code: adjacent runs see the same machine.
    """
    ratios = []
    clock = time.perf_counter
    for index in range(pairs):
        first, second = (baseline, candidate) if index % 2 == 0 else (candidate, baseline)
        start = clock()
        first(chunk)
        middle = clock()
        second(chunk)
        end = clock()
        base, cand = (
            (middle - start, end - middle) if index % 2 == 0 else (end - middle, middle - start)
        )
        ratios.append(cand / base)
    ratios.sort()
    return PairedRatio(ratios[pairs // 2], ratios[pairs // 4], ratios[3 * pairs // 4])
