"""A Control RPC handler as the service serves it: every call ends with a proper status.

* **The request is decoded inside the handler.** gRPC runs a method's
  ``request_deserializer`` before the handler; when it raises, gRPC answers
  ``INTERNAL`` ("Exception deserializing request!") and logs a traceback — the wrong
  status for a client's mistake. Here a bad request ends with ``INVALID_ARGUMENT``
  naming the message type it should have been.
* **An unexpected failure is ``INTERNAL`` in one line.** A handler that raises
  anything but an abort (a store error, a defect) answers ``INTERNAL`` naming the
  cause, and the traceback goes to the processor's log — never gRPC's ``UNKNOWN``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

_log = logging.getLogger(__name__)


def serving_handler(name: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """``handler`` (a unary request; a unary or streamed reply) as described above."""
    deserialize: Callable[[bytes], Any] | None = handler.request_deserializer
    if handler.request_streaming:
        return handler
    owner = getattr(deserialize, "__self__", None)
    message = getattr(getattr(owner, "DESCRIPTOR", None), "name", "request")

    def decode(body: bytes, context: grpc.ServicerContext) -> Any:
        if deserialize is None:
            return body
        try:
            return deserialize(body)
        except Exception as exc:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {message}: {exc}"
            )

    if handler.response_streaming:
        stream = handler.unary_stream

        def streaming(body: bytes, context: grpc.ServicerContext) -> Iterator[Any]:
            request = decode(body, context)
            try:
                yield from stream(request, context)
            except Exception as exc:
                _internal(name, context, exc)

        return grpc.unary_stream_rpc_method_handler(
            streaming, response_serializer=handler.response_serializer
        )
    unary = handler.unary_unary

    def single(body: bytes, context: grpc.ServicerContext) -> Any:
        request = decode(body, context)
        try:
            return unary(request, context)
        except Exception as exc:
            _internal(name, context, exc)

    return grpc.unary_unary_rpc_method_handler(
        single, response_serializer=handler.response_serializer
    )


def _internal(name: str, context: grpc.ServicerContext, error: Exception) -> None:
    if context.code() not in (None, grpc.StatusCode.OK):
        raise error  # an abort: the call has its status already
    _log.error("faultlens: the control call %s failed", name, exc_info=error)
    context.abort(
        grpc.StatusCode.INTERNAL,
        f"faultlens could not serve {name}: {type(error).__name__}: {error}",
    )
