"""OTLP conformance of the processor, one case at a time, over real gRPC."""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path

import grpc
import pytest
from faultlens_collector.control.client import ControlClient
from faultlens_collector.ingest.forward import ForwardSettings
from faultlens_collector.ingest.service import IngestSettings
from faultlens_collector.processor.server import DEFAULT_MAX_REQUEST_BYTES, ProcessorSettings
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.otlp_receiver import OtlpReceiver
from tests.processor_support import (
    LOGS_EXPORT,
    METRICS_EXPORT,
    TRACE_EXPORT,
    all_groups,
    failure_attributes,
    logs_request,
    raw_call,
    running_processor,
    span,
    trace_request,
)


def test_an_empty_request_succeeds_and_writes_nothing(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor:
        for path in (TRACE_EXPORT, LOGS_EXPORT, METRICS_EXPORT):
            body, error = raw_call(processor.address, path, b"")
            assert error is None
            assert body == b""
        assert processor.store is not None
        assert processor.store.group_count == 0


def test_spans_without_failures_are_accepted_and_not_stored(tmp_path: Path) -> None:
    request = trace_request([span(index=i) for i in range(1, 50)])
    with running_processor(tmp_path) as processor:
        body, error = raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())
        assert error is None
        assert not ExportTraceServiceResponse.FromString(body).HasField("partial_success")
        assert processor.store is not None
        assert processor.store.group_count == 0


def test_undecodable_bytes_are_invalid_argument_and_the_server_keeps_serving(
    tmp_path: Path,
) -> None:
    valid = trace_request([span(events=[failure_attributes()])]).SerializeToString()
    with running_processor(tmp_path) as processor:
        for path, name in (
            (TRACE_EXPORT, "ExportTraceServiceRequest"),
            (LOGS_EXPORT, "ExportLogsServiceRequest"),
            (METRICS_EXPORT, "ExportMetricsServiceRequest"),
        ):
            for garbage in (b"\xff\xff\xff\xff", valid[: len(valid) // 2], b"\x0a\xff\x01"):
                _, error = raw_call(processor.address, path, garbage)
                assert error is not None
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert name in error.details()
        _, error = raw_call(processor.address, TRACE_EXPORT, valid)
        assert error is None


def test_invalid_failures_are_reported_as_partial_success(tmp_path: Path) -> None:
    empty_event = {"failure.severity": "high"}
    request = trace_request(
        [
            span("ok", index=1, events=[failure_attributes()]),
            span("bad", index=2, events=[empty_event]),
            span("bad2", index=3, events=[{"exception.type": ""}]),
        ]
    )
    with running_processor(tmp_path) as processor:
        body, error = raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())
        assert error is None
        response = ExportTraceServiceResponse.FromString(body)
        assert response.partial_success.rejected_spans == 2
        assert "without exception.type or exception.message" in (
            response.partial_success.error_message
        )
        with ControlClient(processor.address) as client:
            assert [group.count for group in all_groups(client).values()] == [1]


def test_invalid_log_failures_are_reported_as_partial_success(tmp_path: Path) -> None:
    request = logs_request(
        [
            {"exception.type": "KeyError", "exception.message": "'sku'"},
            {"exception.type": "", "exception.message": ""},
            {"plain": "log line"},
        ]
    )
    with running_processor(tmp_path) as processor:
        body, error = raw_call(processor.address, LOGS_EXPORT, request.SerializeToString())
        assert error is None
        response = ExportLogsServiceResponse.FromString(body)
        assert response.partial_success.rejected_log_records == 1
        assert processor.store is not None
        assert processor.store.group_count == 1


def test_gzip_requests_are_accepted(tmp_path: Path) -> None:
    request = trace_request([span(events=[failure_attributes(failure_count=4)])])
    with running_processor(tmp_path) as processor:
        _, error = raw_call(
            processor.address,
            TRACE_EXPORT,
            request.SerializeToString(),
            compression=grpc.Compression.Gzip,
        )
        assert error is None
        with ControlClient(processor.address) as client:
            assert all_groups(client)["0123456789abcdef"].count == 4


def test_the_default_request_size_limit_is_64_mib() -> None:
    assert DEFAULT_MAX_REQUEST_BYTES == 64 * 1024 * 1024
    assert ProcessorSettings(store_path="x").max_request_bytes == DEFAULT_MAX_REQUEST_BYTES


def test_a_request_over_the_size_limit_is_resource_exhausted(tmp_path: Path) -> None:
    big = trace_request([span(events=[failure_attributes(message="x" * 20_000)])])
    small = trace_request([span(events=[failure_attributes()])])
    with running_processor(tmp_path, max_request_bytes=10_000) as processor:
        _, error = raw_call(processor.address, TRACE_EXPORT, big.SerializeToString())
        assert error is not None
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Compression does not get around the limit: it applies to the decompressed message.
        assert len(gzip.compress(big.SerializeToString())) < 10_000
        _, error = raw_call(
            processor.address,
            TRACE_EXPORT,
            big.SerializeToString(),
            compression=grpc.Compression.Gzip,
        )
        assert error is not None
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        _, error = raw_call(processor.address, TRACE_EXPORT, small.SerializeToString())
        assert error is None


def _retry_delay(error: grpc.RpcError) -> tuple[float, float]:
    trailers = dict(error.trailing_metadata())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == code_pb2.UNAVAILABLE
    detail = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(detail)
    info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    return (
        detail.retry_delay.seconds + detail.retry_delay.nanos / 1e9,
        info.retry_delay.seconds + info.retry_delay.nanos / 1e9,
    )


def test_overload_is_unavailable_with_retry_info_in_both_trailers(tmp_path: Path) -> None:
    def request(fingerprint: str) -> bytes:
        return trace_request([span(events=[failure_attributes(fingerprint)])]).SerializeToString()

    def send_in_background(fingerprint: str) -> tuple[threading.Thread, list[grpc.RpcError | None]]:
        result: list[grpc.RpcError | None] = []
        thread = threading.Thread(
            target=lambda: result.append(
                raw_call(processor.address, TRACE_EXPORT, request(fingerprint))[1]
            )
        )
        thread.start()
        return thread, result

    def wait_for_pending(count: int) -> None:
        while processor.writer is not None and processor.writer.pending < count:
            threading.Event().wait(0.01)

    with running_processor(
        tmp_path,
        max_pending_writes=2,
        ingest=IngestSettings(commit_timeout_seconds=0.3, retry_delay_seconds=2.5),
    ) as processor:
        assert processor.store is not None
        # A store that cannot keep up: the writer is stuck inside its transaction.
        processor.store._lock.acquire()
        try:
            committing, first = send_in_background("000000000000000a")
            wait_for_pending(1)
            queued, second = send_in_background("000000000000000b")
            wait_for_pending(2)
            _, shed = raw_call(processor.address, TRACE_EXPORT, request("000000000000000c"))
            queued.join()
        finally:
            processor.store._lock.release()
        committing.join()
        assert shed is not None
        assert shed.code() == grpc.StatusCode.UNAVAILABLE
        assert "overloaded" in shed.details()
        assert _retry_delay(shed) == (2.5, 2.5)
        # The request queued behind the stuck commit waited too long: it is withdrawn
        # (never stored) and told to retry.
        assert second[0] is not None
        assert second[0].code() == grpc.StatusCode.UNAVAILABLE
        assert "in time" in second[0].details()
        assert _retry_delay(second[0]) == (2.5, 2.5)
        # The request being committed when its time ran out waited for the commit.
        assert first == [None]
        _, error = raw_call(processor.address, TRACE_EXPORT, request("000000000000000d"))
        assert error is None
        with ControlClient(processor.address) as client:
            assert sorted(all_groups(client)) == ["000000000000000a", "000000000000000d"]


def test_a_store_that_cannot_commit_makes_ingest_retryable_not_acknowledged(
    tmp_path: Path,
) -> None:
    request = trace_request([span(events=[failure_attributes()])]).SerializeToString()
    with running_processor(tmp_path) as processor:
        assert processor.store is not None
        processor.store.connection.execute("PRAGMA query_only = ON")
        _, error = raw_call(processor.address, TRACE_EXPORT, request)
        assert error is not None
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "could not store the failures" in error.details()
        processor.store.connection.execute("PRAGMA query_only = OFF")
        _, error = raw_call(processor.address, TRACE_EXPORT, request)
        assert error is None
        with ControlClient(processor.address) as client:
            assert all_groups(client)["0123456789abcdef"].count == 1


def test_metrics_requests_are_accepted_and_handed_to_the_listener(tmp_path: Path) -> None:
    seen: list[ExportMetricsServiceRequest] = []
    request = ExportMetricsServiceRequest()
    request.resource_metrics.add().scope_metrics.add().metrics.add(name="faultlens.breaker.status")
    from faultlens_collector.processor.listeners import Listener
    from faultlens_collector.processor.server import Processor

    class Metrics(Listener):
        def on_metrics(self, request: ExportMetricsServiceRequest) -> None:
            seen.append(request)

    processor = Processor(
        ProcessorSettings(store_path=tmp_path / "db", listen="127.0.0.1:0"),
        listeners=[Metrics()],
    )
    processor.start()
    try:
        _, error = raw_call(processor.address, METRICS_EXPORT, request.SerializeToString())
    finally:
        processor.stop(grace=1)
    assert error is None
    assert [r.resource_metrics[0].scope_metrics[0].metrics[0].name for r in seen] == [
        "faultlens.breaker.status"
    ]


def test_forward_passes_every_request_on_unchanged(tmp_path: Path) -> None:
    traces = trace_request([span(events=[failure_attributes()]), span("plain", index=2)])
    logs = logs_request([{"exception.type": "KeyError"}, {"message": "hello"}])
    metrics = ExportMetricsServiceRequest()
    metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="m")
    with OtlpReceiver() as next_hop:
        with running_processor(
            tmp_path,
            forward=ForwardSettings(target=next_hop.endpoint, headers=(("x-hop", "faultlens"),)),
        ) as processor:
            for path, message in (
                (TRACE_EXPORT, traces),
                (LOGS_EXPORT, logs),
                (METRICS_EXPORT, metrics),
            ):
                _, error = raw_call(processor.address, path, message.SerializeToString())
                assert error is None
            assert next_hop.wait_for(
                lambda: all(next_hop.requests[signal] for signal in ("traces", "logs", "metrics"))
            )
        assert next_hop.requests["traces"] == [traces]
        assert next_hop.requests["logs"] == [logs]
        assert next_hop.requests["metrics"] == [metrics]
        assert all(meta.get("x-hop") == "faultlens" for meta in next_hop.metadata)


def test_refused_requests_are_not_forwarded(tmp_path: Path) -> None:
    with OtlpReceiver() as next_hop:
        with running_processor(
            tmp_path, forward=ForwardSettings(target=next_hop.endpoint)
        ) as processor:
            _, error = raw_call(processor.address, TRACE_EXPORT, b"\xff\xff")
            assert error is not None
            good = ExportTraceServiceRequest()
            raw_call(processor.address, TRACE_EXPORT, good.SerializeToString())
            assert next_hop.wait_for(lambda: len(next_hop.requests["traces"]) == 1)
        assert next_hop.requests["traces"] == [good]


def test_self_metrics_count_received_rejected_and_stored(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    request = trace_request(
        [
            span(index=1, events=[failure_attributes()]),
            span(index=2, events=[{"failure.handled": True}]),
            span(index=3),
        ]
    )
    with running_processor(tmp_path, meter_provider=provider) as processor:
        raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())
        raw_call(processor.address, TRACE_EXPORT, b"\xff")
        data = reader.get_metrics_data()
    points: dict[tuple[str, tuple[tuple[str, object], ...]], float] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted(point.attributes.items())))
                    points[key] = getattr(point, "value", getattr(point, "count", None))
    assert points[("faultlens.processor.items.received", (("signal", "traces"),))] == 3
    assert points[("faultlens.processor.failures.received", (("signal", "traces"),))] == 1
    assert (
        points[
            ("faultlens.processor.items.rejected", (("reason", "invalid"), ("signal", "traces")))
        ]
        == 1
    )
    assert points[("faultlens.processor.requests.refused", (("reason", "undecodable"),))] == 1
    assert points[("faultlens.processor.groups", ())] == 1
    assert points[("faultlens.processor.queue.depth", (("queue", "store"),))] == 0
    assert points[("faultlens.processor.store.commit.duration", ())] == 1


RIGHT_TOKEN = ("authorization", "Bearer s3cret")
WRONG_TOKENS = (
    (),
    (("authorization", "Bearer wrong"),),
    (("authorization", "s3cret"),),
    # Two headers, in both orders, and the right one twice: never the first one wins.
    (("authorization", "Bearer wrong"), RIGHT_TOKEN),
    (RIGHT_TOKEN, ("authorization", "Bearer wrong")),
    (RIGHT_TOKEN, RIGHT_TOKEN),
)


@pytest.mark.parametrize(
    "path", [TRACE_EXPORT, LOGS_EXPORT, METRICS_EXPORT, "/faultlens.v1.Control/ListGroups"]
)
def test_a_token_is_required_on_every_service(tmp_path: Path, path: str) -> None:
    with running_processor(tmp_path, token="s3cret") as processor:
        for metadata in WRONG_TOKENS:
            _, error = raw_call(processor.address, path, b"", metadata=metadata)
            assert error is not None
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        _, error = raw_call(
            processor.address, path, b"", metadata=(("authorization", "Bearer s3cret"),)
        )
        assert error is None


def test_the_control_api_requires_the_token_too(tmp_path: Path) -> None:
    from faultlens_collector.control.client import ControlError

    with running_processor(tmp_path, token="s3cret") as processor:
        with ControlClient(processor.address) as client, pytest.raises(ControlError) as caught:
            all_groups(client)
        assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
        with ControlClient(processor.address, token="s3cret") as client:
            assert all_groups(client) == {}


def test_a_dead_next_hop_never_slows_ingest_and_drops_are_counted(tmp_path: Path) -> None:
    request = trace_request([span(events=[failure_attributes()])]).SerializeToString()
    settings = ForwardSettings(
        target="127.0.0.1:1", max_items=2, max_retry_seconds=60, drain_seconds=0.2
    )
    with running_processor(tmp_path, forward=settings) as processor:
        started = time.monotonic()
        for _ in range(10):
            _, error = raw_call(processor.address, TRACE_EXPORT, request)
            assert error is None
        elapsed = time.monotonic() - started
        assert processor.forwarder is not None
        dropped = processor.forwarder.dropped["queue_full"]
        queued = processor.forwarder.queued
        with ControlClient(processor.address) as client:
            assert all_groups(client)["0123456789abcdef"].count == 10
    assert elapsed < 5
    # Two wait in the queue and each of the two senders retries one; the rest were dropped.
    assert dropped >= 10 - settings.max_items - settings.workers
    assert dropped + queued <= 10
