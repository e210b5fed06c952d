"""Requests decoded inside the handler, so a malformed one is ``INVALID_ARGUMENT``.

gRPC runs a method's ``request_deserializer`` before the handler; when it
raises, gRPC answers ``INTERNAL`` ("Exception deserializing request!") and logs
a traceback — the wrong status for a client's mistake. :func:`decoding_handler`
moves the decoding into the handler, where a bad request ends with
``INVALID_ARGUMENT`` naming the message type it should have been.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc


def decoding_handler(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """``handler`` with its request decoded in the handler (unary requests only)."""
    deserialize: Callable[[bytes], Any] | None = handler.request_deserializer
    if deserialize is None or handler.request_streaming:
        return handler
    owner = getattr(deserialize, "__self__", None)
    name = getattr(getattr(owner, "DESCRIPTOR", None), "name", "request")

    def decode(body: bytes, context: grpc.ServicerContext) -> Any:
        try:
            return deserialize(body)
        except Exception as exc:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {name}: {exc}"
            )

    if handler.response_streaming:
        stream = handler.unary_stream

        def streaming(body: bytes, context: grpc.ServicerContext) -> Iterator[Any]:
            return stream(decode(body, context), context)  # type: ignore[no-any-return]

        return grpc.unary_stream_rpc_method_handler(
            streaming, response_serializer=handler.response_serializer
        )
    unary = handler.unary_unary

    def single(body: bytes, context: grpc.ServicerContext) -> Any:
        return unary(decode(body, context), context)

    return grpc.unary_unary_rpc_method_handler(
        single, response_serializer=handler.response_serializer
    )
