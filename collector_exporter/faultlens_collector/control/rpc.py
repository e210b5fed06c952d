"""What every ``faultlens.v1.Control`` RPC handler uses: handler wrappers over the
generated messages, ``INVALID_ARGUMENT`` for a bad argument, the bounds every
argument is held to, who is calling, and the bookkeeping of open server streams
(:class:`Streams`).

Every call ends with a proper status: a bad argument is ``INVALID_ARGUMENT`` naming
it (a time or number past what a store holds, too many values, an unknown name), and
a handler that fails unexpectedly answers ``INTERNAL`` with one line naming the cause
(:func:`guarded`; the traceback goes to the processor's log) — never ``UNKNOWN``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, TypeVar

import grpc

from faultlens_collector.actions.broadcast import Subscription
from faultlens_collector.control.methods import LATEST_TIME, MAX_INT64

__all__ = ["LATEST_TIME", "MAX_INT64"]  # re-exported for the handlers

Handler = Callable[[Any, grpc.ServicerContext], Any]
T = TypeVar("T")
_log = logging.getLogger(__name__)
#: The actor logged when a request does not name one.
UNKNOWN_ACTOR: Final = "unknown"
#: Longest actor name kept.
MAX_NAME: Final = 256
#: Longest reason kept (dismissals, status changes, halts); longer ones are cut.
MAX_REASON: Final = 4 * MAX_NAME
#: Most values one field of a ``GroupFilter`` takes (services, tags, …).
MAX_FILTER_VALUES: Final = 256


def unary(handler: Handler, request_type: Any, reply_type: Any) -> grpc.RpcMethodHandler:
    """A unary RPC handler over generated message types."""
    return grpc.unary_unary_rpc_method_handler(
        handler,
        request_deserializer=request_type.FromString,
        response_serializer=reply_type.SerializeToString,
    )


def server_stream(handler: Handler, request_type: Any, item_type: Any) -> grpc.RpcMethodHandler:
    """A server-streaming RPC handler over generated message types."""
    return grpc.unary_stream_rpc_method_handler(
        handler,
        request_deserializer=request_type.FromString,
        response_serializer=item_type.SerializeToString,
    )


def guarded(name: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """``handler`` (unary request; unary or streamed reply) answering ``INTERNAL`` with
    one line, and logging the traceback, when it raises anything but an abort."""
    if handler.response_streaming:
        stream = handler.unary_stream

        def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from stream(request, context)
            except Exception as exc:
                _internal(name, context, exc)

        return grpc.unary_stream_rpc_method_handler(
            streaming,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    unary_ = handler.unary_unary

    def single(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return unary_(request, context)
        except Exception as exc:
            _internal(name, context, exc)

    return grpc.unary_unary_rpc_method_handler(
        single,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _internal(name: str, context: grpc.ServicerContext, error: Exception) -> None:
    if context.code() not in (None, grpc.StatusCode.OK):
        raise error  # an abort: the call has its status already
    _log.error("faultlens: the control call %s failed", name, exc_info=error)
    context.abort(
        grpc.StatusCode.INTERNAL,
        f"faultlens could not serve {name}: {type(error).__name__}: {error}",
    )


def at_most(context: grpc.ServicerContext, value: int, limit: int, what: str) -> int:
    """``value``, or the call ends with ``INVALID_ARGUMENT`` when it is above ``limit``."""
    if value > limit:
        invalid(context, f"{what} is at most {limit}, not {value}")
    return value


def who(actor: str, context: grpc.ServicerContext) -> tuple[str, str]:
    """The declared actor (``unknown`` when not given, at most 256 characters) and the
    peer address the call came from."""
    return (actor.strip()[:MAX_NAME] or UNKNOWN_ACTOR), context.peer() or ""


def invalid(context: grpc.ServicerContext, message: str) -> None:
    """End the call with ``INVALID_ARGUMENT``."""
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)


class Streams:
    """The open server streams: at most ``limit`` at once, all ended by :meth:`close_all`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._open: set[Subscription[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def enter(self, subscription: Subscription[T], context: grpc.ServicerContext) -> None:
        """Register a stream's subscription; aborts the call when the processor is
        stopping or ``limit`` streams are open. The subscription is closed when the
        call ends, however it ends."""
        with self._lock:
            refused = self._closed or len(self._open) >= self.limit
            if not refused:
                self._open.add(subscription)
        if refused:
            subscription.close()
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED
                if not self._closed
                else grpc.StatusCode.UNAVAILABLE,
                f"the processor serves at most {self.limit} streams at once; retry later"
                if not self._closed
                else "the processor is stopping",
            )
        context.add_callback(subscription.close)

    def leave(self, subscription: Subscription[T]) -> None:
        with self._lock:
            self._open.discard(subscription)
        subscription.close()

    def close_all(self) -> None:
        """End every open stream and refuse new ones."""
        with self._lock:
            self._closed = True
            subscriptions = list(self._open)
        for subscription in subscriptions:
            subscription.close()
