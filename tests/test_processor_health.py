"""Readiness: grpc.health.v1 on the processor's port, NOT_SERVING while the store cannot commit.

The store is made to fail for real: SQLite's ``max_page_count`` pinned to the file's
current size is a full disk to it (as in the reliability tests).
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from actions_support import wait_until
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.processor_support import (
    TRACE_EXPORT,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    trace_request,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
TRACES = "opentelemetry.proto.collector.trace.v1.TraceService"
UNLIMITED_PAGES = 1_073_741_823


def status(address: str, service: str = "", metadata: tuple[tuple[str, str], ...] = ()) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10, metadata=metadata
        )
        return int(reply.status)


def send_new_groups(address: str, first: int, count: int) -> list[grpc.StatusCode | None]:
    codes = []
    for index in range(first, first + count):
        request = trace_request(
            [span(events=[failure_attributes(f"{index:016x}", message="x" * 2000)], index=index)]
        )
        _, error = raw_call(address, TRACE_EXPORT, request.SerializeToString())
        codes.append(None if error is None else error.code())
    return codes


def test_every_service_is_serving_and_unknown_ones_are_not_found(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor:
        address = processor.address
        for service in ("", TRACES, "faultlens.v1.Control"):
            assert status(address, service) == SERVING
        with pytest.raises(grpc.RpcError) as raised:
            status(address, "no.such.Service")
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_needs_no_token_while_everything_else_does(tmp_path: Path) -> None:
    with running_processor(tmp_path, token="s3cret") as processor:
        assert status(processor.address) == SERVING
        request = trace_request([span(events=[failure_attributes()])])
        _, error = raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())
        assert error is not None
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_not_serving_while_the_store_cannot_commit_and_serving_again_by_itself(
    tmp_path: Path,
) -> None:
    with running_processor(tmp_path, probe_interval=0.1) as processor:
        store = processor.store
        assert store is not None
        address = processor.address
        assert send_new_groups(address, 1, 3) == [None, None, None]
        (pages,) = store.connection.execute("PRAGMA page_count").fetchone()
        store.connection.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
        codes = send_new_groups(address, 100, 20)
        assert grpc.StatusCode.UNAVAILABLE in codes
        assert status(address) == NOT_SERVING
        assert status(address, TRACES) == NOT_SERVING
        assert status(address, "faultlens.v1.Control") == SERVING  # reads still work
        time.sleep(0.5)  # the probe keeps failing: still not serving
        assert status(address) == NOT_SERVING
        # Space returns; no ingest arrives (a balancer took the processor out of
        # rotation), yet the probe finds out.
        store.connection.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
        wait_until(lambda: status(address) == SERVING, timeout=20)
        assert status(address, TRACES) == SERVING
        assert send_new_groups(address, 500, 2) == [None, None]
        assert store.connection.execute("SELECT COUNT(*) FROM store_probe").fetchone() == (0,)


def test_watch_follows_the_store_and_ends_not_serving_when_the_processor_stops(
    tmp_path: Path,
) -> None:
    seen: list[int] = []
    with running_processor(tmp_path, probe_interval=0.1) as processor:
        channel = grpc.insecure_channel(processor.address)
        stream = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=30
        )
        seen.append(next(stream).status)
        store = processor.store
        assert store is not None
        (pages,) = store.connection.execute("PRAGMA page_count").fetchone()
        store.connection.execute(f"PRAGMA max_page_count = {pages}")
        send_new_groups(processor.address, 1, 20)
        seen.append(next(stream).status)
        store.connection.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
        seen.append(next(stream).status)
        processor.readiness.shutdown()  # what stop() does first
        seen.append(next(stream).status)
        stream.cancel()
        channel.close()
    assert seen == [SERVING, NOT_SERVING, SERVING, NOT_SERVING]
