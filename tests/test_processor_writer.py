"""Group commit (groups/writer.py): who commits, batching, withdrawal, shedding, listeners."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from faultlens_collector.groups.model import Change, Occurrence
from faultlens_collector.groups.store import CommitInDoubt
from faultlens_collector.groups.writer import BatchWriter, GaveUp, Overloaded

from tests.actions_support import wait_until
from tests.processor_support import occurrence


class StuckStore:
    """An ``apply`` whose first call blocks until released; records every batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[str]] = []
        self.threads: list[str] = []

    def apply(self, occurrences: Sequence[Occurrence]) -> list[Change]:
        self.batches.append([occurrence.fingerprint for occurrence in occurrences])
        self.threads.append(threading.current_thread().name)
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(5)
        return []


def write_in_thread(
    writer: BatchWriter, fingerprint: str, results: dict[str, object], timeout: float = 5
) -> threading.Thread:
    def write() -> None:
        try:
            writer.write([occurrence(fingerprint)], timeout)
            results[fingerprint] = None
        except Exception as exc:
            results[fingerprint] = exc

    thread = threading.Thread(target=write, name=f"writer-{fingerprint}")
    thread.start()
    return thread


def test_an_idle_writer_commits_on_the_calling_thread() -> None:
    store = StuckStore()
    store.release.set()
    writer = BatchWriter(store.apply)
    writer.write([occurrence("a")], timeout=1)
    assert store.batches == [["a"]]
    assert store.threads == [threading.current_thread().name]
    assert writer.pending == 0


def test_requests_queued_behind_a_commit_are_committed_together_by_one_of_them() -> None:
    store = StuckStore()
    writer = BatchWriter(store.apply)
    results: dict[str, object] = {}
    first = write_in_thread(writer, "first", results)
    assert store.entered.wait(5)
    queued = [write_in_thread(writer, name, results) for name in ("b", "c", "d")]
    wait_until(lambda: writer.pending == 4)
    store.release.set()
    for thread in [first, *queued]:
        thread.join(5)
    assert results == {"first": None, "b": None, "c": None, "d": None}
    assert store.batches == [["first"], ["b", "c", "d"]]
    # The queued batch was committed by the thread of its oldest request.
    assert store.threads == ["writer-first", "writer-b"]
    assert writer.pending == 0


def test_a_request_still_queued_when_its_time_runs_out_is_withdrawn_and_never_stored() -> None:
    store = StuckStore()
    writer = BatchWriter(store.apply)
    results: dict[str, object] = {}
    first = write_in_thread(writer, "first", results)
    assert store.entered.wait(5)
    late = write_in_thread(writer, "late", results, timeout=0.05)
    late.join(5)
    assert isinstance(results["late"], GaveUp)
    assert writer.pending == 1
    store.release.set()
    first.join(5)
    assert results["first"] is None
    writer.write([occurrence("next")], timeout=1)
    assert store.batches == [["first"], ["next"]]


def test_a_full_queue_sheds_at_once() -> None:
    store = StuckStore()
    writer = BatchWriter(store.apply, max_pending=2)
    results: dict[str, object] = {}
    first = write_in_thread(writer, "first", results)
    assert store.entered.wait(5)
    second = write_in_thread(writer, "second", results)
    wait_until(lambda: writer.pending == 2)
    with pytest.raises(Overloaded):
        writer.write([occurrence("third")], timeout=5)
    store.release.set()
    for thread in (first, second):
        thread.join(5)
    assert results == {"first": None, "second": None}
    assert ["third"] not in store.batches


def test_a_failing_listener_does_not_fail_the_commit(caplog: pytest.LogCaptureFixture) -> None:
    def apply(occurrences: Sequence[Occurrence]) -> list[Change]:
        return [Change(None, 1, True, False, occurrences[0])]  # type: ignore[arg-type]

    def listener(changes: Sequence[Change]) -> None:
        raise RuntimeError("engine defect")

    writer = BatchWriter(apply, on_commit=listener)
    writer.write([occurrence("a")], timeout=1)
    assert "a commit listener failed" in caplog.text
    assert writer.pending == 0


class DoubtfulStore(StuckStore):
    """Its second transaction (a batch of three) loses its link while committing."""

    def apply(self, occurrences: Sequence[Occurrence]) -> list[Change]:
        super().apply(occurrences)
        if len(self.batches) == 2:
            raise CommitInDoubt("the link broke during COMMIT")
        return []


def test_a_batch_whose_commit_is_in_doubt_is_not_tried_again_request_by_request() -> None:
    # Tried again, a batch that did commit would be kept twice: each request gets the doubt.
    store = DoubtfulStore()
    writer = BatchWriter(store.apply)
    results: dict[str, object] = {}
    first = write_in_thread(writer, "first", results)
    assert store.entered.wait(5)
    queued = [write_in_thread(writer, name, results) for name in ("b", "c", "d")]
    wait_until(lambda: writer.pending == 4)
    store.release.set()
    for thread in [first, *queued]:
        thread.join(5)
    assert results["first"] is None
    assert all(isinstance(results[name], CommitInDoubt) for name in ("b", "c", "d"))
    assert store.batches == [["first"], ["b", "c", "d"]]  # not b, c and d one by one
    assert writer.pending == 0
