"""Admission control: overload is shed at the door, with ``UNAVAILABLE`` + RetryInfo.

Every RPC waits in the server's thread pool for one of its threads.
:class:`CountingExecutor` counts the RPCs queued for or holding a thread; the
long-lived server streams (halt guards, alert followers) are taken out of that
count (``waiting``). When an OTLP ``Export`` call arrives while the rest is at
``limit``, :class:`Admission` answers it at once with ``UNAVAILABLE`` and a
RetryInfo delay (see :mod:`.retry_info`) — the status OTLP exporters retry
after the delay — instead of queueing it. Its body is never read (the shedding
handler takes the request as a stream it does not consume) and it is answered
from a small pool of its own, so shedding stays fast however slow the store is
and memory does not grow with the number of clients. Control API calls are
never shed (an operator must be able to look at an overloaded processor); gRPC's
``maximum_concurrent_rpcs`` still bounds everything.

Without admission control, gRPC's own limit would answer ``RESOURCE_EXHAUSTED``
without RetryInfo, which the OTLP specification tells exporters not to retry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, Final, TypeVar

import grpc

from faultlens_collector.ingest.retry_info import abort_unavailable

T = TypeVar("T")
#: Threads answering shed calls.
SHED_THREADS: Final = 2


class CountingExecutor(futures.ThreadPoolExecutor):
    """A thread pool that knows how many of its work items are queued or running."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._count_lock = threading.Lock()
        self._backlog = 0

    @property
    def backlog(self) -> int:
        """Work items submitted and not finished (queued or running)."""
        return self._backlog

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> futures.Future[T]:
        with self._count_lock:
            self._backlog += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._finished(None)
            raise
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: object) -> None:
        with self._count_lock:
            self._backlog -= 1


class Admission(grpc.ServerInterceptor):  # type: ignore[misc]
    """Sheds the ``methods`` (full paths) while ``waiting()`` is at ``limit``."""

    def __init__(
        self,
        waiting: Callable[[], int],
        limit: int,
        methods: frozenset[str],
        *,
        retry_delay_seconds: float,
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("the admission limit must be at least 1")
        self._waiting = waiting
        self._limit = limit
        self._methods = methods
        self._delay = retry_delay_seconds
        self._on_shed = on_shed
        self._pool = futures.ThreadPoolExecutor(SHED_THREADS, thread_name_prefix="faultlens-shed")
        self._handler = self._shedding_handler()

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if (
            handler is not None
            and handler_call_details.method in self._methods
            and self._waiting() >= self._limit
        ):
            return self._handler
        return handler

    def close(self) -> None:
        """Stop the shedding threads (after the server stopped)."""
        self._pool.shutdown(wait=False)

    def _shedding_handler(self) -> grpc.RpcMethodHandler:
        delay = self._delay
        on_shed = self._on_shed

        def shed(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            if on_shed is not None:
                on_shed()
            abort_unavailable(context, "faultlens is overloaded; retry later", delay)

        shed.experimental_thread_pool = self._pool  # type: ignore[attr-defined]
        # Request streaming: gRPC calls the handler without reading the request first.
        return grpc.stream_unary_rpc_method_handler(shed)
