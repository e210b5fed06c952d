"""``UNAVAILABLE`` replies that tell OTLP exporters when to retry.

The OTLP specification has servers signal "retry later" with a
``google.rpc.RetryInfo`` detail. gRPC carries details in the
``grpc-status-details-bin`` trailer (a serialized ``google.rpc.Status``); the
OpenTelemetry Python exporter reads the ``google.rpc.retryinfo-bin`` trailer
instead, so both are sent.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2


def retry_trailers(message: str, delay_seconds: float) -> tuple[tuple[str, bytes], ...]:
    """The two trailers announcing ``UNAVAILABLE`` with a retry delay."""
    seconds = int(delay_seconds)
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(
            seconds=seconds, nanos=int((delay_seconds - seconds) * 1e9)
        )
    )
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail])
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", retry.SerializeToString()),
    )


def abort_unavailable(context: Any, message: str, delay_seconds: float) -> NoReturn:
    """End the RPC with ``UNAVAILABLE`` and both retry trailers."""
    context.set_trailing_metadata(retry_trailers(message, delay_seconds))
    context.abort(grpc.StatusCode.UNAVAILABLE, message)
    raise AssertionError("grpc context.abort returned")  # pragma: no cover
