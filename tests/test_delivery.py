"""The queue-and-worker the forwarder and the alert sender share: retries with backoff or
the next hop's delay, a retry budget, stopping, a bounded in-memory queue."""

from __future__ import annotations

import threading
import time

from actions_support import wait_until
from faultlens.resilience import constant, exponential
from faultlens_collector.delivery import DONE, Deliverer, MemoryQueue, Outcome, retry


class Script:
    """A ``send`` that answers from a list and records when it was called."""

    def __init__(self, *outcomes: Outcome | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def __call__(self, work: str) -> Outcome:
        with self.lock:
            self.calls.append((work, time.monotonic()))
            outcome = self.outcomes.pop(0) if self.outcomes else DONE
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def started(queue: MemoryQueue[str], send: Script, **options: object) -> Deliverer[str]:
    deliverer = Deliverer("test", queue, send, idle_wait=0.05, **options)  # type: ignore[arg-type]
    deliverer.start()
    return deliverer


def test_a_failed_send_is_retried_after_the_backoff_then_the_next_hops_delay() -> None:
    queue: MemoryQueue[str] = MemoryQueue(10, 100, len)
    send = Script(retry(), retry(after=0.3), DONE)
    retried: list[float] = []
    deliverer = started(
        queue,
        send,
        backoff=exponential(0.1, jitter=False),
        on_retry=lambda work, delay: retried.append(delay),
    )
    try:
        assert queue.put("a")
        wait_until(lambda: len(send.calls) == 3)
    finally:
        deliverer.stop()
    assert retried == [0.1, 0.3]  # the backoff's first delay, then what the hop asked for
    (_, first), (_, second), (_, third) = send.calls
    assert second - first >= 0.1
    assert third - second >= 0.3
    assert deliverer.failures == 2


def test_work_whose_retries_outlast_the_budget_expires() -> None:
    queue: MemoryQueue[str] = MemoryQueue(10, 100, len)
    send = Script(*[retry()] * 100)
    expired: list[str] = []
    deliverer = started(
        queue,
        send,
        backoff=constant(0.05),
        max_retry_seconds=0.3,
        on_expired=expired.append,
    )
    try:
        queue.put("a")
        queue.put("b")
        wait_until(lambda: expired == ["a", "b"])
    finally:
        deliverer.stop()
    assert 4 <= len([work for work, _ in send.calls if work == "a"]) <= 8


def test_stopping_ends_a_retry_at_once_and_hands_the_work_back() -> None:
    queue: MemoryQueue[str] = MemoryQueue(10, 100, len)
    send = Script(retry())
    stopped: list[str] = []
    deliverer = started(queue, send, backoff=constant(60), on_stopped=stopped.append)
    queue.put("a")
    wait_until(lambda: len(send.calls) == 1)
    began = time.monotonic()
    deliverer.stop(timeout=5)
    assert time.monotonic() - began < 2
    assert stopped == ["a"]


def test_a_send_that_raises_is_reported_and_retried() -> None:
    queue: MemoryQueue[str] = MemoryQueue(10, 100, len)
    send = Script(RuntimeError("defect"), DONE)
    deliverer = started(queue, send, backoff=constant(0.01))
    try:
        queue.put("a")
        wait_until(lambda: len(send.calls) == 2)
    finally:
        deliverer.stop()
    assert deliverer.failures == 1


def test_several_threads_share_one_queue_in_order() -> None:
    queue: MemoryQueue[str] = MemoryQueue(100, 1000, len)
    send = Script()
    deliverer = started(queue, send, backoff=constant(0.01), threads=3)
    try:
        for index in range(30):
            assert queue.put(f"{index:02d}")
        wait_until(lambda: len(send.calls) == 30)
    finally:
        deliverer.stop()
    assert sorted(work for work, _ in send.calls) == [f"{index:02d}" for index in range(30)]
    assert not [t for t in threading.enumerate() if t.name.startswith("faultlens-test-")]


def test_the_memory_queue_refuses_what_does_not_fit_and_drains_in_order() -> None:
    queue: MemoryQueue[str] = MemoryQueue(3, 10, len)
    assert queue.put("aaaa")
    assert queue.put("bbbb")
    assert not queue.put("ccc")  # 11 > 10
    assert queue.put("cc")
    assert not queue.put("d")  # 4 items > 3
    assert (len(queue), queue.size) == (3, 10)
    assert queue.take(0) == "aaaa"
    assert (len(queue), queue.size) == (2, 6)
    assert queue.drain(0) == ["bbbb", "cc"]
    assert (len(queue), queue.size) == (0, 0)
    queue.close()
    assert not queue.put("e")
    assert queue.take(10) is None  # at once once closed
