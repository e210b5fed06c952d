"""An OTLP/gRPC log receiver that keeps the faultlens alerts it is sent (for the demo).

It stands where a real pipeline's collector would be: ``faultlens serve
--alerts`` sends alerts as OTLP log records with the official exporter, and
this receiver decodes them with the ``opentelemetry-proto`` messages.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from faultlens_collector.actions.alerting import KIND
from faultlens_collector.alerts.sender import EVENT_NAME
from faultlens_collector.ingest.extract import any_value


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    """One alert as it arrived: its kind, text and attributes."""

    kind: str
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)


class AlertReceiver:
    """LogsService on a free loopback port; :attr:`alerts` holds what arrived, in order."""

    def __init__(self) -> None:
        self.alerts: list[ReceivedAlert] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "opentelemetry.proto.collector.logs.v1.LogsService",
                    {
                        "Export": grpc.unary_unary_rpc_method_handler(
                            self._export,
                            request_deserializer=logs_service_pb2.ExportLogsServiceRequest.FromString,
                            response_serializer=logs_service_pb2.ExportLogsServiceResponse.SerializeToString,
                        )
                    },
                )
            ]
        )
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    def start(self) -> AlertReceiver:
        """Start serving."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop(grace=None)

    def kinds(self) -> dict[str, int]:
        """How many alerts of each kind arrived."""
        with self._lock:
            counts: dict[str, int] = {}
            for alert in self.alerts:
                counts[alert.kind] = counts.get(alert.kind, 0) + 1
            return counts

    def _export(self, request: Any, context: grpc.ServicerContext) -> Any:
        received = []
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    attributes = {item.key: any_value(item.value) for item in record.attributes}
                    if attributes.get("event.name") != EVENT_NAME:
                        continue
                    received.append(
                        ReceivedAlert(
                            kind=str(attributes.get(KIND, "")),
                            body=str(any_value(record.body) or ""),
                            attributes=attributes,
                        )
                    )
        with self._lock:
            self.alerts.extend(received)
        return logs_service_pb2.ExportLogsServiceResponse()
