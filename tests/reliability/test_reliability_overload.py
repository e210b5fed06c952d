"""Overload: more clients than ``faultlens serve`` can take.

It sheds with ``UNAVAILABLE`` + RetryInfo before reading the request, memory
stays bounded, acknowledged requests stay fast, and at the end the store holds
exactly what was acknowledged: nothing acknowledged is missing, nothing told
to retry was kept.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient
from faultlens_collector.ingest.admission import CountingExecutor
from faultlens_collector.ingest.service import IngestSettings

from tests.processor_support import (
    TRACE_EXPORT,
    ServeProcess,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    trace_request,
)
from tests.reliability import load
from tests.reliability.harness import peak_rss_mib, report, rss_mib, stored_occurrences

CLIENTS = 32
SECONDS = 4.0


@pytest.mark.slow
def test_overload_is_shed_with_retry_info_and_every_acknowledged_failure_is_stored(
    tmp_path: Path,
) -> None:
    args = ("--workers", "2", "--max-pending-requests", "6")
    with ServeProcess(tmp_path / "store.db", *args) as serve:
        warm = load.bodies(1, count=1)[0]
        assert raw_call(serve.address, TRACE_EXPORT, warm.data)[1] is None
        baseline = rss_mib(serve)
        result = load.drive(serve.address, clients=CLIENTS, seconds=SECONDS, seed=7)
        peak = peak_rss_mib(serve)
        stored = stored_occurrences(serve.address) - warm.occurrences
        started = time.monotonic()
        assert raw_call(serve.address, TRACE_EXPORT, warm.data)[1] is None
        after = time.monotonic() - started
    figures = {
        "clients": CLIENTS,
        "workers": 2,
        "max pending requests": 6,
        **result.figures(),
        "stored occurrences": stored,
        "rss before (MiB)": round(baseline, 1),
        "peak rss (MiB)": round(peak, 1),
        "first request after (ms)": round(after * 1000, 1),
    }
    report("overload", figures)
    assert result.shed > 0, "the load did not overload the processor"
    assert result.acknowledged_requests > 0
    assert dict(result.other) == {}
    assert result.uncertain == 0
    assert stored == result.acknowledged
    assert peak - baseline < 100
    assert load.percentile(result.shed_latencies, 99) < 1.0
    assert after < 1.0


def test_shedding_does_not_wait_for_a_stuck_store_and_control_calls_are_answered(
    tmp_path: Path,
) -> None:
    body = trace_request([span(events=[failure_attributes()])]).SerializeToString()
    with running_processor(
        tmp_path,
        workers=1,
        max_pending_requests=2,
        ingest=IngestSettings(commit_timeout_seconds=30),
    ) as processor:
        assert processor.store is not None
        assert processor.executor is not None
        processor.store._lock.acquire()  # the store hangs: the one worker waits on it
        try:
            stuck = [
                threading.Thread(target=raw_call, args=(processor.address, TRACE_EXPORT, body))
            ]
            stuck.append(
                threading.Thread(target=raw_call, args=(processor.address, TRACE_EXPORT, body))
            )
            for thread in stuck:
                thread.start()
            deadline = time.monotonic() + 5
            while processor.executor.backlog < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            started = time.monotonic()
            _, shed = raw_call(processor.address, TRACE_EXPORT, body)
            shed_seconds = time.monotonic() - started
            # Operators can still look: control calls are never shed, and reads do not
            # wait for the stuck writer.
            assert stored_occurrences(processor.address) == 0
            processor.store._lock.release()
        finally:
            if processor.store._lock.locked():
                processor.store._lock.release()
        for thread in stuck:
            thread.join(10)
    assert shed is not None
    assert shed.code() == grpc.StatusCode.UNAVAILABLE
    assert load.retry_delay(shed) == 1.0
    assert shed_seconds < 1.0


def test_the_executor_counts_queued_running_and_cancelled_work() -> None:
    executor = CountingExecutor(1)
    gate = threading.Event()
    try:
        running = executor.submit(gate.wait, 5)
        queued = [executor.submit(time.sleep, 0) for _ in range(3)]
        assert executor.backlog == 4
        assert queued[0].cancel()
        assert executor.backlog == 3
        gate.set()
        running.result(5)
        for future in queued[1:]:
            future.result(5)
        deadline = time.monotonic() + 5
        while executor.backlog and time.monotonic() < deadline:
            time.sleep(0.01)
        assert executor.backlog == 0
    finally:
        gate.set()
        executor.shutdown()


def test_open_streams_do_not_count_as_waiting_requests(tmp_path: Path) -> None:
    body = trace_request([span(events=[failure_attributes()])]).SerializeToString()
    with (
        running_processor(tmp_path, workers=2, max_pending_requests=2) as processor,
        ControlClient(processor.address) as client,
    ):
        assert processor.control is not None
        # Halt guards and alert followers hold streams open for as long as they run.
        streams = [
            client.stream("WatchHalts", control_pb2.WatchHaltsRequest(), timeout=30)
            for _ in range(4)
        ]
        threads = [threading.Thread(target=lambda s=s: next(s, None)) for s in streams]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(processor.control.streams) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(processor.control.streams) == 4
        _, error = raw_call(processor.address, TRACE_EXPORT, body)
        processor.control.close_streams()
        for thread in threads:
            thread.join(10)
    assert error is None
