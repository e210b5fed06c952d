"""Group commit: one writer thread turns many concurrent requests into few transactions.

Request handlers :meth:`~BatchWriter.submit` the occurrences of a request and
wait on the returned future; the writer thread takes everything pending (up to
``max_batch`` requests), applies it to the store in **one** transaction, hands
the changes to the listener (``on_commit``: the action engine) and then resolves
every future — so each request is acknowledged only after its data committed
and the engine saw it, and a busy processor pays one commit for many requests
instead of one each. The listener runs on the writer thread: it must be quick.
A handler that gives up waiting cancels its future: when that succeeds, the
writer has not taken the request and never will (so telling the client to
retry cannot store it twice); when it fails, the request is being committed
and its outcome is near.

The queue is bounded (``max_pending`` requests): :meth:`submit` returns None
when it is full, which the ingest service turns into ``UNAVAILABLE`` with a
retry delay, so overload sheds load instead of growing memory. When the
transaction of a batch fails, each of its requests is tried again in a
transaction of its own: one request the store cannot take (a poison request)
fails alone instead of failing everything committed with it, and a store that
cannot commit at all (disk full, read-only) fails every one (nothing of them
was committed). A failing store is logged as one error line naming the cause,
and its recovery as one warning, each at most once a minute: an operator
sees a store in trouble (or flapping on a nearly full disk) without a line per
request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Final

from faultlens_collector.processor.groups import Change
from faultlens_collector.processor.occurrences import Occurrence

_log = logging.getLogger(__name__)
_STOP: Final = object()
#: Seconds between two log lines about the store failing (or recovering).
LOG_INTERVAL: Final = 60.0

ChangeListener = Callable[[Sequence[Change]], None]


class BatchWriter:
    """The single writer of a store (see the module docstring)."""

    def __init__(
        self,
        apply: Callable[[Sequence[Occurrence]], list[Change]],
        *,
        max_pending: int = 256,
        max_batch: int = 64,
        on_commit: ChangeListener | None = None,
        on_latency: Callable[[float], None] | None = None,
    ) -> None:
        self._apply = apply
        self._queue: queue.Queue[object] = queue.Queue()
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._on_commit = on_commit
        self._on_latency = on_latency
        self._thread: threading.Thread | None = None
        self._failing = False
        self._failures = 0
        self._failure_logged = -LOG_INTERVAL
        self._recovery_logged = -LOG_INTERVAL

    @property
    def pending(self) -> int:
        """Requests submitted and not yet committed (or failed)."""
        return self._pending

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="faultlens-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, occurrences: Sequence[Occurrence]) -> Future[None] | None:
        """Queue one request's occurrences; None when the queue is full (shed the request)."""
        with self._pending_lock:
            if self._pending >= self._max_pending:
                return None
            self._pending += 1
        future: Future[None] = Future()
        self._queue.put((occurrences, future))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch.append(more)
            self._commit(self._claim(batch))  # type: ignore[arg-type]
            if stop:
                return

    def _claim(
        self, batch: list[tuple[Sequence[Occurrence], Future[None]]]
    ) -> list[tuple[Sequence[Occurrence], Future[None]]]:
        """The requests of ``batch`` whose handlers still wait (their futures now running)."""
        claimed = [item for item in batch if item[1].set_running_or_notify_cancel()]
        if len(claimed) < len(batch):
            with self._pending_lock:
                self._pending -= len(batch) - len(claimed)
        return claimed

    def _commit(self, batch: list[tuple[Sequence[Occurrence], Future[None]]]) -> None:
        if not batch:
            return
        everything = [occurrence for occurrences, _ in batch for occurrence in occurrences]
        started = time.perf_counter()
        try:
            changes = self._apply(everything)
        except BaseException as exc:
            if len(batch) == 1:
                self._failed(exc)
                self._finish(batch, exc)
            else:
                for item in batch:
                    self._commit([item])
            return
        if self._failing:
            self._recovered()
        if self._on_latency is not None:
            self._on_latency(time.perf_counter() - started)
        if self._on_commit is not None and changes:
            try:
                self._on_commit(changes)
            except Exception:  # a listener must never stop the writer
                _log.exception("faultlens: a commit listener failed")
        self._finish(batch, None)

    def _failed(self, error: BaseException) -> None:
        self._failing = True
        self._failures += 1
        now = time.monotonic()
        if now - self._failure_logged >= LOG_INTERVAL:
            self._failure_logged = now
            cause = f"{type(error).__name__}: {error}"
            if self._failures == 1:
                _log.error(
                    "faultlens: the store cannot commit (%s); ingest answers UNAVAILABLE "
                    "with a retry delay until it can",
                    cause,
                )
            else:
                _log.error(
                    "faultlens: the store still cannot commit (%s): %d commits failed since "
                    "the last report",
                    cause,
                    self._failures,
                )
            self._failures = 0

    def _recovered(self) -> None:
        self._failing = False
        now = time.monotonic()
        if now - self._recovery_logged >= LOG_INTERVAL:
            self._recovery_logged = now
            _log.warning("faultlens: the store commits again")

    def _finish(
        self,
        batch: list[tuple[Sequence[Occurrence], Future[None]]],
        error: BaseException | None,
    ) -> None:
        with self._pending_lock:
            self._pending -= len(batch)
        for _, future in batch:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(None)
