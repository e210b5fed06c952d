"""What every ``faultlens.v1.Control`` RPC handler uses: handler wrappers over the
generated messages, ``INVALID_ARGUMENT`` for a bad argument, the bounds every
argument is held to, who is calling, and the bookkeeping of open server streams
(:class:`Streams`).

A bad argument is ``INVALID_ARGUMENT`` naming it (a time or number past what a store
holds, too many values, an unknown name); what else can end a call is
:mod:`.serving`'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

import grpc

from faultlens_collector.actions.broadcast import Subscription

Handler = Callable[[Any, grpc.ServicerContext], Any]
T = TypeVar("T")
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
