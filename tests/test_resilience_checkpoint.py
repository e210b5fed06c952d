"""Checkpoints: save/restore/clear, rate limiting, the file format and its errors,
the context manager, asyncio, threads and processes, observability, the tracker."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlens.resilience import (
    Checkpoint,
    CheckpointError,
    FailureTracker,
    HaltedError,
    _checkpoint_file,
    _durable,
    health,
)
from faultlens.resilience import (
    _halts as halts,
)
from faultlens.resilience._checkpoint import set_testing
from resilience_support import FakeClock, Metrics, clock_fixture, meter_fixture  # noqa: F401 (fixtures)

WALL = 1_700_000_000.0


class Wall:
    """A wall clock (epoch seconds) that only moves when told."""

    def __init__(self) -> None:
        self.now = WALL

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="wall")
def wall_fixture() -> Wall:
    return Wall()


@pytest.fixture(name="fake_time")
def fake_time_fixture(clock: FakeClock, wall: Wall) -> Iterator[None]:
    with set_testing(clock=clock, wall_clock=wall):
        yield


def checkpoint(tmp_path: Path, name: str = "orders", **options: Any) -> Checkpoint:
    options.setdefault("register", False)
    return Checkpoint(name, directory=tmp_path, **options)


def document(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


# -- save, restore, clear --------------------------------------------------------------------


def test_save_restore_clear_round_trip(tmp_path: Path) -> None:
    job = checkpoint(tmp_path)
    assert job.path == tmp_path / "orders.json"
    assert job.restore() is None
    assert job.save({"position": 7, "seen": ["a", "b"]}) is True  # the first save writes
    again = checkpoint(tmp_path)
    assert again.restore() == {"position": 7, "seen": ["a", "b"]}
    assert job.clear() is True
    assert not job.path.exists()
    assert checkpoint(tmp_path).restore() is None


def test_the_file_is_versioned_json(tmp_path: Path, fake_time: None) -> None:
    job = checkpoint(tmp_path)
    job.save({"position": 3})
    job.save({"position": 4}, force=True)
    raw = job.path.read_bytes()
    assert raw.endswith(b"\n")
    assert document(job.path) == {
        "format": "faultlens.checkpoint",
        "version": 1,
        "job": "orders",
        "sequence": 2,
        "saved_at": "2023-11-14T22:13:20+00:00",
        "state": {"position": 4},
    }


def test_a_restarted_job_continues_the_sequence(tmp_path: Path) -> None:
    first = checkpoint(tmp_path, interval=0)
    first.save({"position": 1})
    first.save({"position": 2})
    first.close()
    second = checkpoint(tmp_path, interval=0)
    assert second.restore() == {"position": 2}
    second.save({"position": 3})
    assert document(second.path)["sequence"] == 3


def test_states_must_be_json(tmp_path: Path) -> None:
    job = checkpoint(tmp_path, interval=0)
    with pytest.raises(TypeError, match="checkpoint 'orders': the state is not JSON-serializable"):
        job.save({"seen": {1, 2}})
    with pytest.raises(ValueError, match="not JSON-serializable: Out of range float"):
        job.save({"rate": math.nan})
    with pytest.raises(TypeError, match="must not be None"):
        job.save(None)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        job.save(loop)
    assert not job.path.exists()


def test_names_become_safe_file_names(tmp_path: Path) -> None:
    assert checkpoint(tmp_path, "nightly/import 1").path == tmp_path / "nightly%2Fimport%201.json"
    explicit = Checkpoint("x", path=tmp_path / "sub" / "x.ckpt", register=False)
    explicit.save(1)
    assert explicit.path.exists()  # parent directories are created


def test_default_directory_and_interval_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULTLENS_CHECKPOINT_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("FAULTLENS_CHECKPOINT_INTERVAL", "2.5")
    job = Checkpoint("orders", register=False)
    assert job.path == tmp_path / "env" / "orders.json"
    assert job.interval == 2.5
    assert job.stale_after == 2.5
    monkeypatch.delenv("FAULTLENS_CHECKPOINT_DIR")
    monkeypatch.delenv("FAULTLENS_CHECKPOINT_INTERVAL")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    job = Checkpoint("orders", register=False)
    assert job.path == tmp_path / "state" / "faultlens" / "checkpoints" / "orders.json"
    assert job.interval == 10.0


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"interval": -1}, "interval must be >= 0"),
        ({"stale_after": 0}, "stale_after must be > 0"),
        ({"path": "a.json", "directory": "."}, "give path or directory, not both"),
        ({"position": 3}, "position must be callable"),
    ],
)
def test_bad_configuration_raises_one_clear_value_error(options: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Checkpoint("orders", register=False, **options)
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        Checkpoint("", register=False)


# -- rate limiting ---------------------------------------------------------------------------


def test_saves_are_rate_limited_unless_forced(
    tmp_path: Path, clock: FakeClock, fake_time: None
) -> None:
    job = checkpoint(tmp_path, interval=10)
    assert job.save({"position": 1}) is True  # the first one writes at once
    clock.advance(4)
    assert job.save({"position": 2}) is False
    clock.advance(5.9)
    assert job.save({"position": 3}) is False
    assert document(job.path)["state"] == {"position": 1}
    clock.advance(0.1)  # 10 s after the last write
    assert job.save({"position": 4}) is True
    assert job.save({"position": 5}, force=True) is True  # forced: written at once ...
    clock.advance(9)
    assert job.save({"position": 6}) is False  # ... and the interval restarts from it
    clock.advance(1)
    assert job.save({"position": 7}) is True
    assert document(job.path)["state"] == {"position": 7}
    assert document(job.path)["sequence"] == 4


def test_a_zero_interval_writes_every_save(tmp_path: Path) -> None:
    job = checkpoint(tmp_path, interval=0)
    assert all(job.save({"position": n}) for n in range(5))
    assert document(job.path)["sequence"] == 5


def test_the_alarm_makes_a_save_due_without_reading_the_clock(tmp_path: Path) -> None:
    job = checkpoint(tmp_path, interval=0.05)
    assert job.save({"position": 1}) is True
    assert job.save({"position": 2}) is False
    assert job._due is False  # the not-due path is a flag test
    deadline = time.monotonic() + 10
    while not job._due and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job._due is True  # raised by the alarm thread once the interval passed
    assert job.save({"position": 3}) is True
    assert document(job.path)["state"] == {"position": 3}


# -- corrupt and foreign files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty"),
        (b'{"format": "faultlens.checkpoint", "vers', "the file is not valid JSON"),
        (b"\x80\x04\x95pickle", "the file is not valid JSON"),
        (b"[1, 2]", 'it is not a faultlens checkpoint (no "format": "faultlens.checkpoint")'),
        (b'{"format": "faultlens.halts/1", "tracker": "x"}', "it is not a faultlens checkpoint"),
        (b'{"format": "faultlens.checkpoint", "job": "orders"}', "its version field is missing"),
        (
            b'{"format": "faultlens.checkpoint", "version": 2, "job": "orders", "state": 1}',
            "written by a newer faultlens (format version 2; this one reads version 1)",
        ),
        (
            b'{"format": "faultlens.checkpoint", "version": 1, "job": "billing", "state": 1}',
            "it belongs to job 'billing', not 'orders'",
        ),
        (
            b'{"format": "faultlens.checkpoint", "version": 1, "job": "orders", "sequence": 1}',
            "it holds no state",
        ),
        (
            b'{"format": "faultlens.checkpoint", "version": 1, "job": "orders", "sequence": 1,'
            b' "saved_at": "yesterday", "state": 1}',
            "its saved_at field is not an ISO 8601 time",
        ),
    ],
)
def test_a_corrupt_or_foreign_file_is_a_clear_error(
    tmp_path: Path, content: bytes, problem: str, telemetry: Any
) -> None:
    path = tmp_path / "orders.json"
    path.write_bytes(content)
    job = checkpoint(tmp_path)
    with pytest.raises(CheckpointError) as raised:
        job.restore()
    error = raised.value
    assert error.job == "orders"
    assert error.path == str(path)
    assert problem in error.problem
    assert str(path) in str(error)
    assert "fix or remove the file" in str(error)
    assert path.read_bytes() == content  # left alone for a human to look at
    failure = telemetry.only_failure()
    assert failure["failure.source"] == "checkpoint"
    assert failure["failure.handled"] is False
    assert failure["checkpoint.name"] == "orders"
    assert job.health().status == "degraded"
    assert pickle.loads(pickle.dumps(error)).problem == error.problem


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "orders.json").mkdir()  # reading it fails with IsADirectoryError
    with pytest.raises(CheckpointError, match="it cannot be read"):
        checkpoint(tmp_path).restore()


# -- the context manager ---------------------------------------------------------------------


def test_the_context_manager_clears_on_success(tmp_path: Path) -> None:
    job = checkpoint(tmp_path)
    with job:
        job.save({"position": 1})
        assert job.path.exists()
    assert not job.path.exists()
    assert not job.path.with_name("orders.json.lock").exists()


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_the_context_manager_saves_the_latest_state_on_error(
    tmp_path: Path, clock: FakeClock, fake_time: None, error: BaseException
) -> None:
    job = checkpoint(tmp_path, interval=60)

    def run() -> None:
        with job:
            for position in range(1, 100):
                job.save({"position": position})  # only the first is written (interval)
                clock.advance(0.1)
            raise error

    with pytest.raises(type(error)):
        run()
    assert document(job.path)["state"] == {"position": 99}
    assert not job.path.with_name("orders.json.lock").exists()  # released on the way out
    assert checkpoint(tmp_path).restore() == {"position": 99}


def test_flush_writes_the_latest_state_and_never_raises(tmp_path: Path) -> None:
    job = checkpoint(tmp_path, interval=60)
    assert job.flush() is False  # nothing to write yet
    job.save({"position": 1})
    job.save({"position": 2})
    assert job.flush() is True
    assert document(job.path)["state"] == {"position": 2}
    job._latest = {"bad": object()}
    assert job.flush() is False
    assert job.health().status == "degraded"


# -- asyncio ---------------------------------------------------------------------------------


def test_async_variants(tmp_path: Path) -> None:
    async def main() -> None:
        job = checkpoint(tmp_path, interval=60)
        assert await job.arestore() is None
        assert await job.asave({"position": 1}) is True
        assert await job.asave({"position": 2}) is False
        assert await job.aflush() is True
        assert await checkpoint(tmp_path).arestore() == {"position": 2}
        assert await job.aclear() is True
        assert not job.path.exists()

        async def fail() -> None:
            async with job:
                await job.asave({"position": 5})
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await fail()
        assert document(job.path)["state"] == {"position": 5}
        async with job:
            assert await job.arestore() == {"position": 5}
        assert not job.path.exists()

    asyncio.run(main())


def test_async_writes_never_block_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers: list[int] = []

    def slow_replace(path: Path, data: bytes) -> None:
        writers.append(threading.get_ident())
        time.sleep(0.3)  # an fsync on a slow disk
        _durable.replace_file(path, data)

    monkeypatch.setattr(_checkpoint_file, "replace_file", slow_replace)

    async def main() -> int:
        job = checkpoint(tmp_path, interval=0)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await job.asave({"position": 1})
        task.cancel()
        return ticks

    ticks = asyncio.run(main())
    assert writers
    assert threading.get_ident() not in writers
    assert ticks >= 5  # the loop kept running while the write waited


# -- threads and processes -------------------------------------------------------------------


def test_concurrent_savers_never_corrupt_the_file(tmp_path: Path) -> None:
    jobs = [checkpoint(tmp_path, interval=0), checkpoint(tmp_path, interval=0)]
    threads_per_job, saves = 4, 12
    stop = threading.Event()
    reads: list[int] = []
    problems: list[BaseException] = []

    def save(job: Checkpoint, worker: int) -> None:
        for n in range(saves):
            job.save({"worker": worker, "n": n, "padding": "x" * (worker * 500)})

    def read() -> None:
        while not stop.is_set():
            try:
                data = jobs[0].path.read_bytes()
            except FileNotFoundError:
                continue
            try:
                reads.append(_checkpoint_file.decode("orders", "p", data).sequence)
            except CheckpointError as exc:
                problems.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    savers = [
        threading.Thread(target=save, args=(job, index * threads_per_job + worker))
        for index, job in enumerate(jobs)
        for worker in range(threads_per_job)
    ]
    for thread in savers:
        thread.start()
    for thread in savers:
        thread.join()
    stop.set()
    reader.join()
    assert not problems
    assert reads, "the reader saw the file"
    final = document(jobs[0].path)
    assert final["sequence"] == len(savers) * saves  # every write counted, none lost
    assert final["state"]["n"] == saves - 1  # the last write of one of the savers
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from faultlens.resilience import Checkpoint
    job = Checkpoint("orders", directory=sys.argv[1], register=False)
    job.save({"position": 1})
    print("holding", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.slow
def test_two_processes_cannot_run_one_job(tmp_path: Path, telemetry: Any) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "FAULTLENS_DISABLED": "true"},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        job = checkpoint(tmp_path)
        with pytest.raises(CheckpointError, match=rf"another process \(pid {holder.pid}\)"):
            job.restore()
        assert job.save({"position": 99}) is False  # recorded, not raised, not written
        assert document(job.path)["state"] == {"position": 1}
        saves = [f for f in telemetry.failure_events() if f["failure.handled"]]
        assert len(saves) == 1
        assert "is running this job" in saves[0]["exception.message"]
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead holder's lock: the job can be taken over at once.
    assert job.restore() == {"position": 1}
    assert job.save({"position": 2}, force=True) is True


def test_objects_of_one_process_share_the_job(tmp_path: Path) -> None:
    first, second = checkpoint(tmp_path, interval=0), checkpoint(tmp_path, interval=0)
    first.save({"position": 1})
    assert second.restore() == {"position": 1}
    second.save({"position": 2})
    assert first.restore() == {"position": 2}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_does_not_inherit_the_job(tmp_path: Path) -> None:
    job = checkpoint(tmp_path, interval=0.05)
    job.save({"position": 1})
    job.save({"position": 2})  # not due: an alarm is pending in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            outcome = "due" if job._due else "waiting"
            if job.save({"position": 3}, force=True):
                outcome += " saved-unexpectedly"
            outcome += " refused" if job._last_error and "is running" in job._last_error else ""
            os.write(write, outcome.encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    answer = os.read(read, 200).decode()
    os.close(read)
    assert answer == "due refused"  # woken after fork; the parent's lock refused it
    assert document(job.path)["state"] == {"position": 1}


def test_leftovers_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    leftover = tmp_path / ".orders.json.abc123.tmp"
    leftover.write_text("{half a")
    unrelated = tmp_path / ".other.json.abc123.tmp"
    unrelated.write_text("{")
    checkpoint(tmp_path).restore()
    assert not leftover.exists()
    assert unrelated.exists()


# -- failures, observability, health ---------------------------------------------------------


def test_a_failing_save_is_recorded_once_and_the_job_goes_on(
    tmp_path: Path, telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directory should be")
    job = Checkpoint("orders", directory=blocker, interval=0, register=False)
    with caplog.at_level(logging.ERROR, logger="faultlens"):
        results = [job.save({"position": n}) for n in range(20)]
    assert results == [False] * 20  # no exception reached the job
    (failure,) = telemetry.failure_events()
    assert failure["failure.source"] == "checkpoint"
    assert failure["failure.handled"] is True
    assert failure["exception.type"] in {"FileExistsError", "NotADirectoryError"}
    assert "checkpoint 'orders' not saved" in failure["exception.message"]
    assert failure["checkpoint.path"] == str(blocker / "orders.json")
    assert failure["checkpoint.position"] == 0
    errors = [r for r in caplog.records if "not saved" in r.getMessage()]
    assert len(errors) == 1
    assert "the job goes on" in errors[0].getMessage()
    assert "from the beginning" in errors[0].getMessage()
    status = job.health()
    assert status.status == "degraded"
    assert status.detail["failed_saves"] == 20
    assert "not saved" in status.detail["last_error"]

    blocker.unlink()  # the disk is fixed
    with caplog.at_level(logging.WARNING, logger="faultlens"):
        assert job.save({"position": 20}) is True
    assert any("save works again" in r.getMessage() for r in caplog.records)
    assert job.health().status == "healthy"
    blocker_again = job.path.parent
    assert blocker_again.is_dir()


def test_a_failing_clear_is_recorded_and_not_raised(tmp_path: Path, telemetry: Any) -> None:
    job = checkpoint(tmp_path)
    job.path.mkdir()  # unlinking it fails
    assert job.clear() is False
    failure = telemetry.only_failure()
    assert "checkpoint 'orders' not cleared" in failure["exception.message"]
    assert failure["failure.handled"] is True
    assert job.health().status == "degraded"
    job.path.rmdir()
    assert job.clear() is True
    assert job.health().status == "healthy"


def test_span_events_for_save_restore_and_clear(tmp_path: Path, telemetry: Any) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    job = checkpoint(tmp_path, interval=60)
    with tracer.start_as_current_span("job"):
        job.restore()
        job.save({"position": 5})
        job.save({"position": 6})  # not due: no event
        job.save({"position": 7}, force=True)
        checkpoint(tmp_path).restore()
        job.clear()
    (span,) = telemetry.finished()
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    assert events[0] == (
        "faultlens.checkpoint.restore",
        {"checkpoint.name": "orders", "checkpoint.found": False},
    )
    assert events[1] == (
        "faultlens.checkpoint.save",
        {
            "checkpoint.name": "orders",
            "checkpoint.position": 5,
            "checkpoint.sequence": 1,
            "checkpoint.forced": False,
        },
    )
    assert events[2][1]["checkpoint.position"] == 7
    assert events[2][1]["checkpoint.forced"] is True
    name, restored = events[3]
    assert name == "faultlens.checkpoint.restore"
    assert restored["checkpoint.found"] is True
    assert restored["checkpoint.position"] == 7
    assert restored["checkpoint.sequence"] == 2
    assert restored["checkpoint.age_s"] >= 0
    assert events[4] == ("faultlens.checkpoint.clear", {"checkpoint.name": "orders"})
    assert len(events) == 5


def test_position_of_a_state(tmp_path: Path, telemetry: Any) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("job"):
        checkpoint(tmp_path, "a").save(41)
        checkpoint(tmp_path, "b").save({"next": 3})
        checkpoint(tmp_path, "c", position=lambda state: state["next"]).save({"next": 3})
    positions = [
        dict(e.attributes or {}).get("checkpoint.position") for e in telemetry.finished()[0].events
    ]
    assert positions == [41, None, 3]


def test_metrics(tmp_path: Path, meter: Metrics, wall: Wall, fake_time: None) -> None:
    job = checkpoint(tmp_path, interval=0, meter_provider=meter.provider)
    assert meter.points("faultlens.checkpoint.age") == []  # no checkpoint yet
    job.restore()
    job.save({"position": 1})
    job.save({"position": 2})
    wall.now += 42.5
    job.restore()
    (tmp_path / "f").write_text("")
    blocked = Checkpoint(
        "blocked", path=tmp_path / "f" / "x.json", interval=0, meter_provider=meter.provider
    )
    blocked.save(1)
    blocked.save(2)
    with pytest.raises(CheckpointError):
        Checkpoint("bad", path=tmp_path / "f", meter_provider=meter.provider).restore()

    def value(name: str, job: str, outcome: str) -> float:
        return meter.value(name, **{"checkpoint.name": job, "checkpoint.outcome": outcome})

    saves, restores = "faultlens.checkpoint.saves", "faultlens.checkpoint.restores"
    assert value(saves, "orders", "success") == 2
    assert value(saves, "orders", "failure") == 0
    assert value(saves, "blocked", "success") == 0
    assert value(saves, "blocked", "failure") == 2
    assert value(restores, "orders", "empty") == 1
    assert value(restores, "orders", "success") == 1
    assert value(restores, "orders", "failure") == 0
    assert value(restores, "bad", "failure") == 1
    ages = {attrs["checkpoint.name"]: v for attrs, v in meter.points("faultlens.checkpoint.age")}
    assert ages == {"orders": 42.5}
    job.clear()
    assert meter.points("faultlens.checkpoint.age") == []  # no checkpoint any more


def test_health_shows_a_stale_checkpoint_as_degraded(
    tmp_path: Path, wall: Wall, clock: FakeClock, fake_time: None
) -> None:
    job = Checkpoint("stale-test", directory=tmp_path, interval=30)
    assert job.health().status == "healthy"  # not running
    job.save({"position": 1})
    wall.now += 29
    clock.advance(29)
    assert job.save({"position": 2}) is False
    report = health().as_dict()
    (component,) = [c for c in report["components"] if c["name"] == "stale-test"]
    assert component["status"] == "healthy"
    assert component["position"] == 1
    assert component["age_s"] == 29
    wall.now += 2  # 31 s: older than the expected interval
    assert job.health().status == "degraded"
    assert health().status != "healthy"
    clock.advance(2)
    job.save({"position": 3})
    assert job.health().status == "healthy"
    job.close()  # the process stopped working on it: nothing is expected any more
    wall.now += 3600
    assert job.health().status == "healthy"
    assert job.health().detail["age_s"] == 3600


# -- working with the tracker ----------------------------------------------------------------


def process(
    job: Checkpoint, tracker: FailureTracker, items: int, done: list[int], bad: set[int]
) -> None:
    """A job that resumes from its checkpoint and stops when the tracker halts it."""
    with job:
        start = (job.restore() or {"position": 0})["position"]
        for item in range(start, items):
            tracker.guard()
            try:
                if item in bad:
                    raise ValueError(f"bad item {item}")
            except ValueError as exc:
                tracker.record_failure(exc)
                continue
            tracker.record_success()
            done.append(item)
            job.save({"position": item + 1})


def test_a_halted_error_mid_job_leaves_a_checkpoint_to_resume_from(
    tmp_path: Path, clock: FakeClock, fake_time: None
) -> None:
    tracker = FailureTracker("orders", threshold=2, register=False)
    done: list[int] = []
    bad = {40, 41}
    with pytest.raises(HaltedError):
        process(checkpoint(tmp_path, interval=60), tracker, 100, done, bad)
    assert done == list(range(40))
    # Saved on the way out although the interval had not passed since the first write.
    assert document(tmp_path / "orders.json")["state"] == {"position": 40}

    tracker.resume()
    bad.clear()  # the data was fixed
    resumed: list[int] = []
    process(checkpoint(tmp_path, interval=60), tracker, 100, resumed, bad)
    assert resumed == list(range(40, 100))  # started where it stopped, finished
    assert not (tmp_path / "orders.json").exists()


def test_a_halt_can_flush_the_checkpoint(tmp_path: Path, clock: FakeClock, fake_time: None) -> None:
    job = checkpoint(tmp_path, interval=60)
    tracker = FailureTracker(
        "orders", threshold=3, on_halt=[lambda halt: job.flush()], register=False
    )
    for position in range(1, 51):
        job.save({"position": position})
    for _ in range(3):
        tracker.record_failure(ValueError("downstream rejects everything"))
    assert document(job.path)["state"] == {"position": 50}


def test_the_halt_state_file_shares_the_durable_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Path] = []

    def spy(path: Path, data: bytes) -> None:
        written.append(path)
        _durable.replace_file(path, data)

    monkeypatch.setattr(halts, "replace_file", spy)
    monkeypatch.setattr(_checkpoint_file, "replace_file", spy)
    tracker = FailureTracker("t", threshold=1, state_file=tmp_path / "halts.json", register=False)
    tracker.record_failure(ValueError("x"))
    checkpoint(tmp_path).save(1)
    assert written == [tmp_path / "halts.json", tmp_path / "orders.json"]


@pytest.mark.slow
def test_the_example_resumes_a_million_item_loop_after_kill_9(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "checkpoint_resume.py"
    env = {**os.environ, "FAULTLENS_DISABLED": "true", "FAULTLENS_CHECKPOINT_INTERVAL": "0.05"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(example), str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )

    crashed = run("--crash-at", "600000")
    assert crashed.returncode == -9, crashed.stderr
    assert crashed.stdout.splitlines() == ["starting at item 0"]
    resumed = run()
    assert resumed.returncode == 0, resumed.stderr
    first, last = resumed.stdout.splitlines()
    position = int(first.removeprefix("starting at item ").replace(",", ""))
    assert 0 < position <= 600_000  # from the last checkpoint before the crash
    assert last == "finished 1,000,000 items; checkpoint cleared"
    assert list(tmp_path.iterdir()) == []
    # The loop in the docs is the example's loop.
    docs = (example.parent.parent / "docs" / "resilience.md").read_text()
    for line in (
        'state = job.restore() or {"position": 0}',
        'for i in range(state["position"], ITEMS):',
        'state["position"] = i + 1  # the work *done*, recorded after it is done',
    ):
        assert line in docs, line
        assert line in example.read_text(), line
