"""Group commit: many concurrent requests, few transactions, few thread wake-ups.

A request handler calls :meth:`BatchWriter.write` with the occurrences of its
request; the call returns once they are committed (or raises). A writer that
finds nobody committing becomes the *leader*: on its own thread it takes what is
queued (up to ``max_batch`` requests, its own first among them) and applies it to
the store in **one** transaction, hands the changes to the listener (``on_commit``:
the action engine) and then tells each request of the batch its outcome, waking
its writer. It goes on until its own request is done, then hands the lead to the
writer of the oldest request still queued (waking that one only). So each request
is acknowledged only after its data committed and the engine saw it; a busy
processor pays one commit for many requests instead of one each, and an idle one
commits a request on the thread that received it, without waking another. The
listener runs on the leader's thread: it must be quick.

A writer whose request is still queued when its ``timeout`` passes withdraws it
(:class:`GaveUp`: it was not stored and never will be, so telling the client to
retry cannot store it twice); a request already taken into a transaction waits
for that transaction's outcome, which is near.

The queue is bounded (``max_pending`` requests queued or being committed): beyond
it :meth:`write` raises :class:`Overloaded` at once, which the ingest service turns
into ``UNAVAILABLE`` with a retry delay, so overload sheds load instead of growing
memory. When the transaction of a batch fails, each of its requests is tried again
in a transaction of its own: one request the store cannot take (a poison request)
fails alone instead of failing everything committed with it, and a store that
cannot commit at all (disk full, read-only) fails every one (nothing of them was
committed). A batch whose commit is in doubt
(:class:`~faultlens_collector.groups.store.CommitInDoubt`: the link to a database
server broke during ``COMMIT`` and the server could not say whether it committed) is
not tried again — that could keep it twice — and each of its requests gets that
error. A failing store is logged as one error line naming the cause, and its recovery
as one warning, each at most once a minute: an operator sees a store in trouble (or
flapping on a nearly full disk) without a line per request. ``on_state`` hears each
change between the two (False: cannot commit; True: commits again): the processor's
readiness (:mod:`.health`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

from faultlens_collector.groups.model import Change, Occurrence
from faultlens_collector.groups.store import CommitInDoubt

_log = logging.getLogger(__name__)
#: Seconds between two log lines about the store failing (or recovering).
LOG_INTERVAL: Final = 60.0

ChangeListener = Callable[[Sequence[Change]], None]


class Overloaded(Exception):
    """The queue is full: the request was not queued."""


class GaveUp(Exception):
    """The request was still queued when its time ran out: withdrawn, never stored."""


class _Request:
    """One writer's request; ``wake`` is held until the writer must look at it again
    (its request is done, or it is to lead)."""

    __slots__ = ("done", "error", "lead", "occurrences", "taken", "wake")

    def __init__(self, occurrences: Sequence[Occurrence]) -> None:
        self.occurrences = occurrences
        self.taken = False
        self.done = False
        self.lead = False
        self.error: BaseException | None = None
        self.wake = threading.Lock()
        self.wake.acquire()


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
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self._apply = apply
        self._on_state = on_state
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._on_latency = on_latency
        self._lock = threading.Lock()
        self._queue: deque[_Request] = deque()
        self._pending = 0
        self._leading = False
        self._failing = False
        self._failures = 0
        self._failure_logged = -LOG_INTERVAL
        self._recovery_logged = -LOG_INTERVAL

    @property
    def failing(self) -> bool:
        """The last commit failed (and no commit has succeeded since)."""
        return self._failing

    def recovered(self) -> None:
        """A commit outside the writer (a readiness probe) succeeded: the store commits
        again (logged, ``on_state(True)``) if it was failing."""
        if self._failing:
            self._recovered()

    @property
    def pending(self) -> int:
        """Requests queued or being committed."""
        return self._pending

    def write(self, occurrences: Sequence[Occurrence], timeout: float) -> None:
        """Commit one request's occurrences; returns once they are committed.

        Raises :class:`Overloaded` (not queued: the queue is full), :class:`GaveUp`
        (still queued after ``timeout`` seconds: withdrawn) or the store's error (the
        transaction holding the request failed; nothing of it was kept).
        """
        request = _Request(occurrences)
        with self._lock:
            if self._pending >= self._max_pending:
                raise Overloaded("faultlens is overloaded; retry later")
            self._pending += 1
            self._queue.append(request)
            request.lead = not self._leading
            self._leading = True
        if not request.lead and not request.wake.acquire(timeout=timeout):
            with self._lock:
                if not request.taken and not request.lead:
                    self._queue.remove(request)
                    self._pending -= 1
                    raise GaveUp("faultlens could not store the failures in time")
            request.wake.acquire()  # taken into a transaction, or to lead: near
        if request.lead:
            self._lead(request)
        if request.error is not None:
            raise request.error

    def stop(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` seconds) until nothing is queued or being committed
        (the writers of queued requests commit them)."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.01)

    def _lead(self, own: _Request) -> None:
        """Commit batches from the queue until ``own`` is done, then hand the lead on."""
        batch: list[_Request] = []
        try:
            while not own.done:
                with self._lock:
                    batch = [
                        self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))
                    ]
                    for request in batch:
                        request.taken = True
                self._commit(batch)
        except BaseException as exc:  # a defect: no request may stay taken without an outcome
            self._finish([request for request in batch if not request.done], exc)
            raise
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.release()
                else:
                    self._leading = False

    def _commit(self, batch: list[_Request]) -> None:
        if not batch:
            return
        everything = [occurrence for request in batch for occurrence in request.occurrences]
        started = time.perf_counter()
        try:
            changes = self._apply(everything)
        except BaseException as exc:
            if len(batch) == 1 or isinstance(exc, CommitInDoubt):
                self._failed(exc)
                self._finish(batch, exc)
            else:
                for request in batch:
                    self._commit([request])
            return
        if self._failing:
            self._recovered()
        _notify(self._on_latency, time.perf_counter() - started)
        if changes:
            _notify(self._on_commit, changes)
        self._finish(batch, None)

    def _failed(self, error: BaseException) -> None:
        if not self._failing:
            _notify(self._on_state, False)
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
        _notify(self._on_state, True)
        now = time.monotonic()
        if now - self._recovery_logged >= LOG_INTERVAL:
            self._recovery_logged = now
            _log.warning("faultlens: the store commits again")

    def _finish(self, batch: list[_Request], error: BaseException | None) -> None:
        """Give each request of ``batch`` its outcome and wake its writer (the leader's
        own request needs no waking)."""
        with self._lock:
            self._pending -= len(batch)
        for request in batch:
            request.error = error
            request.done = True
            request.wake.release()


def _notify(listener: Callable[[Any], None] | None, value: object) -> None:
    """Call a commit listener; its failure is logged and never fails the commit."""
    if listener is None:
        return
    try:
        listener(value)
    except Exception:
        _log.exception("faultlens: a commit listener failed")
