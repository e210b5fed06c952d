"""Group commit: one writer thread turns many concurrent requests into few transactions.

Request handlers :meth:`~BatchWriter.submit` the occurrences of a request and
wait on the returned future; the writer thread takes everything pending (up to
``max_batch`` requests), applies it to the store in **one** transaction, hands
the changes to the listener (``on_commit``: the action engine) and then resolves
every future — so each request is acknowledged only after its data committed
and the engine saw it, and a busy processor pays one commit for many requests
instead of one each. The listener runs on the writer thread: it must be quick.

The queue is bounded (``max_pending`` requests): :meth:`submit` returns None
when it is full, which the ingest service turns into ``UNAVAILABLE`` with a
retry delay, so overload sheds load instead of growing memory. A store error
fails every future of the batch (nothing of it was committed).
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
            self._commit(batch)  # type: ignore[arg-type]
            if stop:
                return

    def _commit(self, batch: list[tuple[Sequence[Occurrence], Future[None]]]) -> None:
        everything = [occurrence for occurrences, _ in batch for occurrence in occurrences]
        started = time.perf_counter()
        try:
            changes = self._apply(everything)
        except BaseException as exc:
            self._finish(batch, exc)
            return
        if self._on_latency is not None:
            self._on_latency(time.perf_counter() - started)
        if self._on_commit is not None and changes:
            try:
                self._on_commit(changes)
            except Exception:  # a listener must never stop the writer
                _log.exception("faultlens: a commit listener failed")
        self._finish(batch, None)

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
