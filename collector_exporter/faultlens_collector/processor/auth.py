"""Bearer-token authentication for every service on the processor's port.

With a token configured, each call must carry the gRPC metadata
``authorization: Bearer <token>`` (what OTLP exporters send with
``OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token>`` and faultlens'
exporter with ``FAULTLENS_HEADERS``); anything else ends with
``UNAUTHENTICATED`` before the request body is even read. The comparison takes
constant time whatever the offered token. A call with more than one
``authorization`` header is refused whatever they hold and in whichever order
(which of two headers a proxy or a framework reads differs: neither is trusted).
``open_methods`` (the health checks) need no token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection
from typing import Any

import grpc


class BearerTokenInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls without the right ``authorization`` header; counts refusals."""

    def __init__(
        self,
        token: str,
        *,
        open_methods: Collection[str] = (),
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()
        self._open = frozenset(open_methods)
        self._on_refused = on_refused

    def authorized(self, metadata: Any) -> bool:
        """Whether ``metadata`` (pairs of key and value) carries the expected token in
        exactly one ``authorization`` header."""
        offered: list[bytes] = [
            value.encode() if isinstance(value, str) else bytes(value)
            for key, value in metadata or ()
            if key == "authorization"
        ]
        # Compared even when the count is wrong, so the time taken says nothing either way.
        match = hmac.compare_digest(offered[0] if offered else b"", self._expected)
        return match and len(offered) == 1

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if (
            handler is None
            or method in self._open
            or self.authorized(handler_call_details.invocation_metadata)
        ):
            return handler
        if self._on_refused is not None:
            self._on_refused(method)
        return _refusing(handler)


def _refusing(handler: Any) -> Any:
    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

    kwargs = {
        "request_deserializer": None,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse, **kwargs)
    return grpc.unary_unary_rpc_method_handler(refuse, **kwargs)
