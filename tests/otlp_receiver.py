"""A real OTLP/gRPC receiver for tests: records every request it is sent.

It implements TraceService, LogsService and MetricsService from the
``opentelemetry-proto`` package on a free loopback port, so tests can point the
official OpenTelemetry exporters (or a subprocess running
``opentelemetry-instrument``) at it and read back exactly what arrived::

    with OtlpReceiver() as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True)
        ...
        spans = receiver.wait_for_spans(lambda spans: len(spans) >= 3)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def any_value(value: AnyValue) -> Any:
    """Convert an OTLP AnyValue to the Python value it carries."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(items: Any) -> dict[str, Any]:
    """Convert repeated KeyValue to a dict."""
    return {item.key: any_value(item.value) for item in items}


def failure_events(spans: Iterable[Span]) -> list[dict[str, Any]]:
    """faultlens' failure events on ``spans`` (``exception`` events with a ``failure.source``),
    each with ``_span`` (the span's name) and ``_status`` (its status code) added."""
    found = []
    for span in spans:
        for event in span.events:
            attrs = attributes(event.attributes)
            if event.name == "exception" and "failure.source" in attrs:
                attrs["_span"] = span.name
                attrs["_status"] = span.status.code
                found.append(attrs)
    return found


class _Trace(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, owner: OtlpReceiver) -> None:
        self.owner = owner

    def Export(self, request: Any, context: Any) -> Any:
        self.owner._record("traces", request, context)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
    def __init__(self, owner: OtlpReceiver) -> None:
        self.owner = owner

    def Export(self, request: Any, context: Any) -> Any:
        self.owner._record("logs", request, context)
        return logs_service_pb2.ExportLogsServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, owner: OtlpReceiver) -> None:
        self.owner = owner

    def Export(self, request: Any, context: Any) -> Any:
        self.owner._record("metrics", request, context)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OtlpReceiver:
    """An in-process OTLP/gRPC receiver on ``127.0.0.1:<port>`` (a free one by default;
    pass a port to bring a receiver back where a stopped one was)."""

    def __init__(self, port: int = 0, *, tls: tuple[bytes, bytes] | None = None) -> None:
        """``tls``: (certificate chain, private key), PEM, to serve TLS instead of plaintext."""
        self._lock = threading.Condition()
        self.requests: dict[str, list[Any]] = {"traces": [], "logs": [], "metrics": []}
        self.metadata: list[dict[str, str]] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Trace(self), self._server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(self), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self), self._server)
        if tls is None:
            self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        else:
            credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
            self.port = self._server.add_secure_port(f"127.0.0.1:{port}", credentials)
        self.endpoint = f"127.0.0.1:{self.port}"

    def __enter__(self) -> OtlpReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop(grace=None)

    def _record(self, signal: str, request: Any, context: Any) -> None:
        with self._lock:
            self.requests[signal].append(request)
            self.metadata.append(dict(context.invocation_metadata()))
            self._lock.notify_all()

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """Every span received so far, with its resource attributes."""
        with self._lock:
            return [
                (attributes(rs.resource.attributes), span)
                for request in self.requests["traces"]
                for rs in request.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            ]

    def log_records(self) -> list[tuple[dict[str, Any], LogRecord]]:
        """Every log record received so far, with its resource attributes."""
        with self._lock:
            return [
                (attributes(rl.resource.attributes), record)
                for request in self.requests["logs"]
                for rl in request.resource_logs
                for sl in rl.scope_logs
                for record in sl.log_records
            ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate()`` holds (re-checked on every request); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True


__all__ = ["KeyValue", "OtlpReceiver", "any_value", "attributes"]
