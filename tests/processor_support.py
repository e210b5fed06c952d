"""Helpers for processor tests: OTLP requests built by hand, and running processors.

``running_processor`` starts the real :class:`Processor` in-process on a free
loopback port; ``ServeProcess`` runs ``faultlens serve`` as a subprocess (the
console script), for tests that kill it or need a separate process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient
from faultlens_collector.groups.model import Occurrence
from faultlens_collector.processor.server import Processor, ProcessorSettings
from faultlens_collector.store.sqlite.database import SQLiteDatabase
from faultlens_collector.store.sqlite.groups import SQLiteGroupStore
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
METRICS_EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
FAULTLENS = Path(sys.executable).with_name("faultlens")


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    """OTLP attributes from a dict of str, bool, int and float values."""
    result = []
    for key, value in attributes.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=str(value))
        result.append(KeyValue(key=key, value=any_value))
    return result


def failure_attributes(
    fingerprint: str | None = "0123456789abcdef",
    *,
    exception_type: str = "ValueError",
    message: str = "bad value 42",
    **extra: Any,
) -> dict[str, Any]:
    """Attributes of an ``exception`` event; ``extra`` keys use ``_`` for ``.``."""
    attributes: dict[str, Any] = {"exception.type": exception_type, "exception.message": message}
    if fingerprint is not None:
        attributes["failure.fingerprint"] = fingerprint
    attributes.update({key.replace("_", "."): value for key, value in extra.items()})
    return attributes


def span(
    name: str = "work",
    *,
    events: Sequence[dict[str, Any]] = (),
    index: int = 1,
    time_unix_nano: int = 1_700_000_000_000_000_000,
    attributes: dict[str, Any] | None = None,
) -> Span:
    """A span with one ``exception`` event per attribute dict in ``events``."""
    return Span(
        trace_id=index.to_bytes(16, "big"),
        span_id=index.to_bytes(8, "big"),
        name=name,
        start_time_unix_nano=time_unix_nano - 1000,
        end_time_unix_nano=time_unix_nano,
        attributes=key_values(attributes or {}),
        events=[
            Span.Event(name="exception", time_unix_nano=time_unix_nano, attributes=key_values(e))
            for e in events
        ],
    )


def sqlite_group_store(path: Path, **options: Any) -> SQLiteGroupStore:
    """The group store of a SQLite database at ``path`` (opened here)."""
    return SQLiteDatabase(path).group_store(**options)


def occurrence(fingerprint: str = "00000000000000aa", **fields: object) -> Occurrence:
    """A failure as the extractors hand it to the store; ``fields`` override the defaults."""
    values: dict[str, object] = {
        "fingerprint": fingerprint,
        "exception_type": "ValueError",
        "message": "bad value",
        "stacktrace": "",
        "category": "value",
        "severity": "medium",
        "handled": None,
        "count": 1,
        "time_unix_nano": 1_000,
        "service": "checkout",
        "span_name": "pay",
        "trace_id": "",
        "span_id": "",
    }
    values.update(fields)
    return Occurrence(**values)  # type: ignore[arg-type]


def trace_request(spans: Sequence[Span], service: str = "checkout") -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` with the spans under one resource."""
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=key_values({"service.name": service})),
                scope_spans=[ScopeSpans(spans=list(spans))],
            )
        ]
    )


def logs_request(
    records: Sequence[dict[str, Any]], service: str = "checkout", index: int = 1
) -> ExportLogsServiceRequest:
    """An ``ExportLogsServiceRequest`` with one record per attribute dict."""
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=key_values({"service.name": service})),
                scope_logs=[
                    ScopeLogs(
                        log_records=[
                            LogRecord(
                                time_unix_nano=1_700_000_000_000_000_000,
                                trace_id=index.to_bytes(16, "big"),
                                span_id=index.to_bytes(8, "big"),
                                attributes=key_values(record),
                            )
                            for record in records
                        ]
                    )
                ],
            )
        ]
    )


def raw_call(
    address: str, path: str, body: bytes, *, metadata: Sequence[tuple[str, str]] = (), **kw: Any
) -> tuple[bytes | None, grpc.RpcError | None]:
    """Send raw bytes to a method; returns (response bytes, None) or (None, the error)."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(path)
        try:
            return call(body, timeout=10, metadata=tuple(metadata), **kw), None
        except grpc.RpcError as error:
            return None, error


def all_groups(client: ControlClient) -> dict[str, Any]:
    """Every group the processor holds, by fingerprint."""
    return {
        group.fingerprint: group
        for group in client.export_groups(control_pb2.ExportGroupsRequest())
    }


@contextmanager
def running_processor(tmp_path: Path, **settings: Any) -> Iterator[Processor]:
    """The real processor on a free loopback port with a store in ``tmp_path``."""
    options: dict[str, Any] = {"store_path": tmp_path / "faultlens.db", "listen": "127.0.0.1:0"}
    options.update(settings)
    meter_provider = options.pop("meter_provider", None)
    listeners = options.pop("listeners", ())
    processor = Processor(
        ProcessorSettings(**options), meter_provider=meter_provider, listeners=listeners
    )
    processor.start()
    try:
        yield processor
    finally:
        processor.stop(grace=1)


class ServeProcess:
    """``faultlens serve`` in a subprocess; the address is read from its first line."""

    def __init__(self, store: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.store = store
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.address = ""
        self.output: list[str] = []

    def start(self, listen: str = "127.0.0.1:0", timeout: float = 20.0) -> ServeProcess:
        self.process = subprocess.Popen(
            [str(FAULTLENS), "serve", "--listen", listen, "--store", str(self.store), *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self.process.stderr is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            match = re.search(r"listening on (\S+?),", line)
            if match:
                self.address = match.group(1)
                threading.Thread(target=self._drain, daemon=True).start()
                return self
            if not line and self.process.poll() is not None:
                break
        raise AssertionError(f"faultlens serve did not start: {line!r}")

    def _drain(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)

    def __enter__(self) -> ServeProcess:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
