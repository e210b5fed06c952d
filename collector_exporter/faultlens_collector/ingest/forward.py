"""``--forward``: pass every acknowledged OTLP request on, byte for byte, to the next hop.

The forwarder never slows ingest down: :meth:`Forwarder.enqueue` only appends
to a bounded in-memory queue (``max_bytes`` of request bodies and ``max_items``
requests) and returns; sender threads deliver the bodies, unchanged, to the
same OTLP method on the next hop (the queue and the threads are
:mod:`faultlens_collector.delivery`'s, shared with the alert sender).

What is dropped, and how it is counted (``faultlens.processor.forward.dropped``
by ``reason``):

* ``queue_full`` — the queue is at its bound when a request arrives (the next
  hop is slower than ingest, or down for longer than the queue covers); the
  arriving request is dropped, the queued ones keep their order;
* ``rejected`` — the next hop refused the request with a non-retryable status
  (e.g. ``INVALID_ARGUMENT``, ``UNAUTHENTICATED``);
* ``expired`` — retryable failures (``UNAVAILABLE``, ``DEADLINE_EXCEEDED`` …)
  went on for longer than ``max_retry_seconds``;
* ``shutdown`` — still queued when the processor stopped after
  ``drain_seconds``.

Retries back off exponentially (0.5 s doubling, capped at 30 s) or wait the
delay the next hop asks for in a ``google.rpc.RetryInfo`` trailer. Requests
leave the queue in order; with several sender threads, the next request may
overtake one being retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc
from faultlens.resilience import exponential
from google.rpc import error_details_pb2

from faultlens_collector.channels import channel_for
from faultlens_collector.delivery import DONE, Deliverer, MemoryQueue, Outcome, retry

_log = logging.getLogger(__name__)

#: OTLP method paths by signal.
METHODS: Final = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
_RETRYABLE: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DATA_LOSS,
    }
)
DROP_REASONS: Final = ("queue_full", "rejected", "expired", "shutdown")


@dataclass(frozen=True, slots=True)
class ForwardSettings:
    """Where and how to forward. ``target`` is ``host:port`` or ``http(s)://host:port``."""

    target: str
    headers: tuple[tuple[str, str], ...] = ()
    max_bytes: int = 64 * 1024 * 1024
    max_items: int = 10_000
    max_retry_seconds: float = 300.0
    timeout_seconds: float = 10.0
    workers: int = 2
    drain_seconds: float = 5.0
    root_certificates: bytes | None = None


#: A queued request: its signal and its body.
Request = tuple[str, bytes]


class Forwarder:
    """Bounded, retrying, order-keeping pass-through to the next OTLP hop."""

    def __init__(
        self,
        settings: ForwardSettings,
        *,
        on_drop: Callable[[str, int], None] | None = None,
        on_forwarded: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self._channel = channel_for(settings.target, settings.root_certificates)
        self._calls = {signal: self._channel.unary_unary(path) for signal, path in METHODS.items()}
        self._queue: MemoryQueue[Request] = MemoryQueue(
            settings.max_items, settings.max_bytes, lambda request: len(request[1])
        )
        self._on_drop = on_drop or (lambda reason, count: None)
        self._on_forwarded = on_forwarded or (lambda count: None)
        self._deliverer = Deliverer(
            "forward",
            self._queue,
            self._send,
            backoff=exponential(0.5, cap=30.0, jitter=False),
            threads=settings.workers,
            max_retry_seconds=settings.max_retry_seconds,
            on_expired=lambda request: self._drop("expired"),
            on_stopped=lambda request: self._drop("shutdown"),
        )
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.forwarded = 0

    @property
    def queued(self) -> int:
        """Requests waiting to be sent."""
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """Bytes of request bodies waiting to be sent."""
        return self._queue.size

    def start(self) -> None:
        """Start the sender threads."""
        self._deliverer.start()

    def enqueue(self, signal: str, body: bytes) -> bool:
        """Queue a request body for ``signal``; False (and counted) when it was dropped."""
        if self._queue.put((signal, body)):
            return True
        self._drop("queue_full")
        return False

    def stop(self) -> None:
        """Send what can be sent within ``drain_seconds``, then drop the rest (``shutdown``)."""
        for _ in self._queue.drain(self.settings.drain_seconds):
            self._drop("shutdown")
        self._deliverer.stop(self.settings.timeout_seconds + 1)
        self._channel.close()

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1
        self._on_drop(reason, 1)

    def _send(self, request: Request) -> Outcome:
        signal, body = request
        try:
            self._calls[signal](
                body, timeout=self.settings.timeout_seconds, metadata=self.settings.headers
            )
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if code in _RETRYABLE:
                return retry(_retry_delay(error))
            _log.warning(
                "faultlens: %s refused forwarded %s: %s", self.settings.target, signal, code
            )
            self._drop("rejected")
            return DONE
        self.forwarded += 1
        self._on_forwarded(1)
        return DONE


def _retry_delay(error: Any) -> float | None:
    try:
        trailers: Sequence[tuple[str, Any]] = error.trailing_metadata() or ()
        for key, value in trailers:
            if key == "google.rpc.retryinfo-bin" and isinstance(value, bytes):
                info = error_details_pb2.RetryInfo.FromString(value)
                return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    except Exception:
        return None
    return None
