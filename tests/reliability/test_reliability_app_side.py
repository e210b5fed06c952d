"""The app side: with the processor and the OTLP endpoint down, an instrumented program
(SDK, ``BatchSpanProcessor``, the OTLP exporter and faultlens' exporter) runs at full
speed, raises nothing it did not raise itself, and its memory stays bounded (the
SDK's batch queue drops what cannot be sent)."""

from __future__ import annotations

import pytest

from tests.reliability.appside import run_app
from tests.reliability.harness import report

SPANS = 15_000


@pytest.mark.slow
def test_an_instrumented_program_runs_at_full_speed_with_its_endpoints_down() -> None:
    runs = {mode: run_app(mode, SPANS, export_timeout=0.3) for mode in ("none", "up", "down")}
    report(
        "app side",
        {
            mode: {
                "µs per request": round(run.micros_per_span, 1),
                "vs no exporter": round(run.loop_seconds / runs["none"].loop_seconds, 2),
                "vs endpoints up": round(run.loop_seconds / runs["up"].loop_seconds, 2),
                "shutdown (s)": round(run.shutdown_seconds, 2),
                "peak rss (MiB)": round(run.peak_rss_mib, 1),
            }
            for mode, run in runs.items()
        },
    )
    for mode, run in runs.items():
        assert run.returncode == 0, (mode, run.stderr)
        assert run.unexpected == 0, mode
        assert run.declined == SPANS // 10, mode
        assert "Traceback" not in run.stderr, mode
    # Endpoints down cost no more than endpoints up (the exporters give up in the
    # background); generous bounds for a shared machine.
    assert runs["down"].loop_seconds <= 1.5 * runs["up"].loop_seconds
    # Shutting down waits for the exporters' timeouts (0.3 s per queued batch here; the
    # SDK bounds it at 30 s per batch processor), not forever.
    assert runs["down"].shutdown_seconds < 10


@pytest.mark.slow
def test_memory_stays_bounded_while_the_exporters_fail() -> None:
    payload, spans = 8192, 4_000
    small = run_app("down", spans, payload=payload, shutdown=False)
    large = run_app("down", 8 * spans, payload=payload, shutdown=False)
    growth = large.peak_rss_mib - small.peak_rss_mib
    # Keeping every span of the extra 28,000 would take more than 210 MiB.
    unbounded = 7 * spans * payload / 2**20
    report(
        "app memory, endpoints down",
        {
            f"peak rss after {spans} requests (MiB)": round(small.peak_rss_mib, 1),
            f"peak rss after {8 * spans} requests (MiB)": round(large.peak_rss_mib, 1),
            "growth (MiB)": round(growth, 1),
            "if nothing were dropped (MiB)": round(unbounded),
        },
    )
    assert small.returncode == large.returncode == 0
    assert large.unexpected == 0
    # The batch queues and the batches being encoded take tens of MiB, whatever the load.
    assert growth < unbounded / 3
