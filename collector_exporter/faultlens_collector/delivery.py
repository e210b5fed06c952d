"""One queue, worker threads, retries with backoff: how faultlens hands data to a next hop.

Shared by the forwarder (every acknowledged OTLP request to the next hop,
:mod:`faultlens_collector.ingest.forward`) and the alert sender (alerts from the
durable outbox to an OTLP log receiver, :mod:`faultlens_collector.alerts.sender`), in
the spirit of opentelemetry-sdk's ``BatchProcessor``: the data path fills a
:class:`WorkQueue` without ever waiting for the next hop; :class:`Deliverer` threads
take work from it and ``send`` it. A send that fails in a way worth retrying
(:func:`retry`) is tried again after a delay — the one the next hop asked for, else
the next of the :class:`~faultlens.resilience.Backoff` strategy (the resilience
layer's, e.g. exponential with jitter) — until it succeeds, its retry budget
(``max_retry_seconds``) runs out, or the deliverer stops. Where the queue lives is
the queue's business: in memory and bounded (:class:`MemoryQueue`: the forwarder
drops what does not fit) or in a database (the alert outbox keeps everything until
the next hop acknowledged it).

``send`` runs on a worker thread and must not raise; if it does (or the queue's
``take`` does), the error is reported
(:func:`faultlens.shared.report_internal_error`) and the work is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from faultlens.resilience import Backoff
from faultlens.shared import report_internal_error

T = TypeVar("T")
W = TypeVar("W")
W_co = TypeVar("W_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one ``send`` came to: ``done`` (delivered, or not deliverable at all), or
    to be retried, after ``retry_after`` seconds when the next hop said so."""

    done: bool
    retry_after: float | None = None


#: Delivered (or given up by ``send`` itself): not to be tried again.
DONE = Outcome(True)


def retry(after: float | None = None) -> Outcome:
    """Try again: after ``after`` seconds (the next hop's request), else after the
    deliverer's next backoff delay."""
    return Outcome(False, after)


class WorkQueue(Protocol[W_co]):
    """Where a :class:`Deliverer` takes its work from."""

    def take(self, timeout: float) -> W_co | None:
        """The next unit of work, waiting at most ``timeout`` seconds; None when there
        is none (or the queue was closed). Must return at once after :meth:`close`."""
        ...

    def close(self) -> None:
        """Wake every :meth:`take` and make further ones return None."""
        ...


class Deliverer(Generic[W]):
    """``threads`` worker threads taking work from ``queue`` and sending it (see the
    module docstring).

    ``on_expired`` is told about work whose retries went on for longer than
    ``max_retry_seconds`` (None: retried for as long as it takes); ``on_stopped``
    about work abandoned because the deliverer stopped while retrying it;
    ``on_retry`` about each failed attempt, with the delay before the next.
    """

    def __init__(
        self,
        name: str,
        queue: WorkQueue[W],
        send: Callable[[W], Outcome],
        *,
        backoff: Backoff,
        threads: int = 1,
        idle_wait: float = 5.0,
        max_retry_seconds: float | None = None,
        on_expired: Callable[[W], None] | None = None,
        on_stopped: Callable[[W], None] | None = None,
        on_retry: Callable[[W, float], None] | None = None,
    ) -> None:
        self.name = name
        self._queue = queue
        self._send = send
        self._backoff = backoff
        self._threads_wanted = max(1, threads)
        self._idle_wait = idle_wait
        self._max_retry_seconds = max_retry_seconds
        self._on_expired = on_expired
        self._on_stopped = on_stopped
        self._on_retry = on_retry
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        #: Failed attempts since start (each retry, expiry or abandonment follows one).
        self.failures = 0

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def start(self) -> None:
        """Start the worker threads."""
        for index in range(self._threads_wanted):
            thread = threading.Thread(
                target=self._run, name=f"faultlens-{self.name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking work, end the waits between attempts (work being retried goes to
        ``on_stopped``), and wait up to ``timeout`` seconds for the threads (a send in
        flight finishes first)."""
        self._stopping.set()
        self._queue.close()
        self.join(timeout)

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds (in all) for the worker threads to end."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                work = self._queue.take(self._idle_wait)
            except Exception:  # the queue's store failing: wait as after a failed send
                report_internal_error(f"delivery: {self.name} queue")
                self._stopping.wait(self._backoff.delay(1))
                continue
            if work is not None:
                self.deliver(work)

    def deliver(self, work: W) -> bool:
        """Send ``work`` until it is done; False when it expired or was abandoned."""
        give_up = (
            None if self._max_retry_seconds is None else time.monotonic() + self._max_retry_seconds
        )
        attempt = 0
        while True:
            try:
                outcome = self._send(work)
            except Exception:
                report_internal_error(f"delivery: {self.name}")
                outcome = retry()
            if outcome.done:
                return True
            self.failures += 1
            attempt += 1
            delay = outcome.retry_after
            if delay is None:
                delay = self._backoff.delay(attempt)
            if give_up is not None and time.monotonic() + delay > give_up:
                _notify(self._on_expired, work)
                return False
            if self._on_retry is not None:
                self._on_retry(work, delay)
            if self._stopping.wait(delay):
                _notify(self._on_stopped, work)
                return False


def _notify(listener: Callable[[T], None] | None, work: T) -> None:
    if listener is not None:
        listener(work)


class MemoryQueue(Generic[T]):
    """A bounded in-memory FIFO of items with a size each: at most ``max_items`` items
    and ``max_size`` in all (bytes, say). :meth:`put` never waits: an item that does
    not fit is refused."""

    def __init__(self, max_items: int, max_size: int, size: Callable[[T], int]) -> None:
        self.max_items = max_items
        self.max_size = max_size
        self._size_of = size
        self._items: deque[T] = deque()
        self._size = 0
        self._closed = False
        self._condition = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size(self) -> int:
        """The size of the items queued."""
        return self._size

    def put(self, item: T) -> bool:
        """Queue ``item``; False (and not queued) when it does not fit or the queue is
        closed."""
        size = self._size_of(item)
        with self._condition:
            if (
                self._closed
                or len(self._items) >= self.max_items
                or self._size + size > self.max_size
            ):
                return False
            self._items.append(item)
            self._size += size
            self._condition.notify()
        return True

    def take(self, timeout: float) -> T | None:
        with self._condition:
            if not self._condition.wait_for(lambda: self._items or self._closed, timeout):
                return None
            if self._closed or not self._items:
                return None
            item = self._items.popleft()
            self._size -= self._size_of(item)
            self._condition.notify_all()  # a drain() may be waiting for the queue to empty
            return item

    def drain(self, timeout: float) -> Sequence[T]:
        """Wait up to ``timeout`` seconds for the queue to empty, then empty it: the
        items left (in order)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._items and (left := deadline - time.monotonic()) > 0:
                self._condition.wait(min(left, 0.05))
            items = list(self._items)
            self._items.clear()
            self._size = 0
            return items

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()


class OutageLog:
    """One warning line when a background task (``what``: sending alerts, following the
    fleet, maintenance) finds the store it works from unusable, and one when it works
    again — not a line, nor a traceback, per attempt: a database that is restarting is
    not an internal error."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self._lock = threading.Lock()
        self.failing = False

    def failed(self, error: BaseException) -> None:
        with self._lock:
            first, self.failing = not self.failing, True
        if first:
            self._logger.warning("faultlens: %s waits for the store: %s", self._what, error)

    def worked(self) -> None:
        with self._lock:
            was, self.failing = self.failing, False
        if was:
            self._logger.warning("faultlens: %s works again", self._what)
