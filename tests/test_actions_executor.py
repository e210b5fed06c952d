"""Hook execution: off the caller's thread, bounded, isolated, audited."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions_support import FP, FP2, Clock, facts, python_hook, sqlite_action_store, wait_until
from faultlens_collector.actions import AuditRecord, HookJob, MemoryActionStore
from faultlens_collector.actions.config import EngineConfig, HookConfig
from faultlens_collector.actions.executor import HookExecutor
from faultlens_collector.actions.hookstats import HookStats
from faultlens_collector.actions.records import new_id
from faultlens_collector.actions.store import ActionStore


class Harness:
    """An executor over a store, recording what finished."""

    def __init__(
        self, hooks: list[HookConfig], store: ActionStore | None = None, **engine: Any
    ) -> None:
        self.clock = Clock()
        self.store = store if store is not None else MemoryActionStore()
        self.stats = HookStats()
        self.finished: list[tuple[HookJob, AuditRecord]] = []
        self.executor = HookExecutor(
            {hook.name: hook for hook in hooks},
            EngineConfig(**{"workers": 1, "queue_size": 10, "kill_grace": 0.1, **engine}),
            self.store,
            clock=self.clock,
            stats=self.stats,
            on_finished=lambda job, record: self.finished.append((job, record)),
        )

    def job(self, hook: str, fingerprint: str = FP, **extra: Any) -> HookJob:
        return HookJob(
            new_id(), hook, "rule-1", "fix", facts(fingerprint=fingerprint), self.clock(), **extra
        )

    def wait_finished(self, count: int) -> list[AuditRecord]:
        wait_until(lambda: len(self.finished) >= count)
        return [record for _, record in self.finished]


@pytest.fixture
def harnesses() -> Iterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        harness.executor.stop(timeout=2)


def harness(made: list[Harness], hooks: list[HookConfig], **options: Any) -> Harness:
    created = Harness(hooks, **options)
    made.append(created)
    created.executor.start()
    return created


def hook(name: str, code: str, **options: Any) -> HookConfig:
    return HookConfig(name=name, command=tuple(python_hook(code)), **options)


def test_submit_returns_at_once_and_the_hook_runs_on_a_worker(harnesses: list[Harness]) -> None:
    h = harness(harnesses, [hook("slow", "import time; time.sleep(0.3); print('fixed')")])
    job = h.job("slow")
    started = time.perf_counter()
    assert h.executor.submit(job) == "queued"
    assert time.perf_counter() - started < 0.05
    (record,) = h.wait_finished(1)
    assert record.outcome == "ok"
    assert record.exit_code == 0
    assert record.output_tail == "fixed\n"
    assert record.duration >= 0.3
    assert (record.id, record.hook, record.rule, record.fingerprint, record.purpose) == (
        job.id,
        "slow",
        "rule-1",
        FP,
        "fix",
    )
    assert h.store.audit_records() == [record]
    assert h.stats.snapshot()[0] == {("slow", "ok"): 1}


def test_the_hook_gets_the_failure_as_json_and_environment(
    harnesses: list[Harness], tmp_path: Path
) -> None:
    out = tmp_path / "seen.json"
    code = f"""
        import json, os, sys
        env = {{k: v for k, v in os.environ.items() if k.startswith(("FAULTLENS", "POOL"))}}
        json.dump({{"stdin": json.load(sys.stdin), "env": env}}, open({str(out)!r}, "w"))
    """
    h = harness(harnesses, [hook("fix", code, env={"POOL": "main"})])
    h.executor.submit(h.job("fix"))
    h.wait_finished(1)
    seen = json.loads(out.read_text())
    payload = seen["stdin"]
    assert payload["schema"] == "faultlens.hook/1"
    assert payload["purpose"] == "fix"
    assert payload["rule"] == "rule-1"
    assert payload["hook"] == "fix"
    assert payload["halt"] is None
    assert payload["failure"]["fingerprint"] == FP
    assert payload["failure"]["message"] == "invalid amount -3"
    env = seen["env"]
    assert env["POOL"] == "main"
    assert env["FAULTLENS_HOOK"] == "fix"
    assert env["FAULTLENS_RULE"] == "rule-1"
    assert env["FAULTLENS_PURPOSE"] == "fix"
    assert env["FAULTLENS_JOB_ID"] == payload["job_id"]
    assert env["FAULTLENS_FAILURE_FINGERPRINT"] == FP
    assert env["FAULTLENS_FAILURE_TYPE"] == "ValueError"
    assert env["FAULTLENS_FAILURE_MESSAGE"] == "invalid amount -3"
    assert env["FAULTLENS_FAILURE_SERVICE"] == "payments"
    assert env["FAULTLENS_FAILURE_COUNT"] == "1"


def test_a_minimal_environment_on_request(
    harnesses: list[Harness], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCESSOR_SECRET", "s3cret")
    out = tmp_path / "env.json"
    code = f"import json, os; json.dump(dict(os.environ), open({str(out)!r}, 'w'))"
    h = harness(harnesses, [hook("a", code, inherit_env=False), hook("b", code)])
    h.executor.submit(h.job("a"))
    h.wait_finished(1)
    env = json.loads(out.read_text())
    assert "PROCESSOR_SECRET" not in env
    assert "PATH" in env
    h.executor.submit(h.job("b"))
    h.wait_finished(2)
    assert json.loads(out.read_text())["PROCESSOR_SECRET"] == "s3cret"


@pytest.mark.parametrize(
    ("code", "outcome", "detail"),
    [
        ("raise SystemExit(4)", "failed", "exited 4"),
        ("raise RuntimeError('boom')", "failed", "exited 1"),
        ("import os; os.kill(os.getpid(), 9)", "failed", "killed by signal 9"),
        ("import time; time.sleep(30)", "timeout", "timed out after 0.3 s"),
    ],
)
def test_failing_hooks_are_recorded_and_contained(
    harnesses: list[Harness], code: str, outcome: str, detail: str
) -> None:
    h = harness(harnesses, [hook("bad", code, timeout=0.3), hook("good", "print('still here')")])
    h.executor.submit(h.job("bad"))
    h.executor.submit(h.job("good"))
    bad, good = h.wait_finished(2)
    assert bad.outcome == outcome
    assert bad.detail.startswith(detail)
    assert good.outcome == "ok"


def test_a_hook_that_cannot_start(harnesses: list[Harness], tmp_path: Path) -> None:
    script = tmp_path / "gone.sh"
    h = harness(harnesses, [HookConfig(name="gone", command=(str(script),))])
    h.executor.submit(h.job("gone"))
    (record,) = h.wait_finished(1)
    assert record.outcome == "error"
    assert "cannot start" in record.detail


def test_an_exception_after_the_run_does_not_kill_the_worker(harnesses: list[Harness]) -> None:
    h = harness(harnesses, [hook("ok", "pass")])
    calls: list[str] = []

    def explode(job: HookJob, record: AuditRecord) -> None:
        calls.append(job.id)
        raise RuntimeError("listener bug")

    h.executor._on_finished = explode
    h.executor.submit(h.job("ok", FP))
    h.executor.submit(h.job("ok", FP2))
    wait_until(lambda: len(calls) == 2)
    assert len(h.store.audit_records()) == 2


def test_output_is_redacted_and_bounded(harnesses: list[Harness]) -> None:
    code = "print('x' * 10000); print('connecting with password=hunter2')"
    h = harness(harnesses, [hook("loud", code)], output_limit=256)
    h.executor.submit(h.job("loud"))
    (record,) = h.wait_finished(1)
    assert record.output_tail.endswith("password=[REDACTED]\n")
    assert "hunter2" not in record.output_tail
    assert len(record.output_tail) <= 256 + len("[REDACTED]")  # redaction may lengthen it


def test_cooldown_per_hook_and_group(harnesses: list[Harness]) -> None:
    h = harness(harnesses, [hook("a", "pass", cooldown=60), hook("b", "pass", cooldown=60)])
    assert h.executor.submit(h.job("a", FP)) == "queued"
    assert h.executor.submit(h.job("a", FP)) == "cooldown"
    assert h.executor.cooling("a", FP, h.clock())
    assert h.executor.submit(h.job("a", FP2)) == "queued"
    assert h.executor.submit(h.job("b", FP)) == "queued"
    h.wait_finished(3)
    h.clock.advance(59)
    assert h.executor.submit(h.job("a", FP)) == "cooldown"
    h.clock.advance(2)
    assert not h.executor.cooling("a", FP, h.clock())
    assert h.executor.submit(h.job("a", FP)) == "queued"
    h.wait_finished(4)
    assert h.stats.snapshot()[1] == {("a", "cooldown"): 3}
    # A manual run ignores the cooldown.
    assert h.executor.submit(h.job("a", FP), cooldown=False) == "queued"


def test_cooldowns_survive_a_restart(harnesses: list[Harness], tmp_path: Path) -> None:
    store = sqlite_action_store(tmp_path / "a.db")
    first = harness(harnesses, [hook("a", "pass", cooldown=60)], store=store)
    first.executor.submit(first.job("a"))
    first.wait_finished(1)
    first.executor.stop()
    again = harness(harnesses, [hook("a", "pass", cooldown=60)], store=store)
    assert again.executor.submit(again.job("a")) == "cooldown"


@pytest.mark.parametrize("where", ["hook", "engine"])
def test_dry_run_runs_nothing_but_audits(
    harnesses: list[Harness], tmp_path: Path, where: str
) -> None:
    marker = tmp_path / "ran"
    config = hook("fix", f"open({str(marker)!r}, 'w')", dry_run=where == "hook", cooldown=60)
    h = harness(harnesses, [config], dry_run=where == "engine")
    assert h.executor.submit(h.job("fix")) == "queued"
    (record,) = h.wait_finished(1)
    assert record.outcome == "dry_run"
    assert record.exit_code is None
    assert record.detail.startswith("dry run: would run ")
    assert "open(" in record.detail
    assert not marker.exists()
    assert h.executor.submit(h.job("fix")) == "cooldown"  # the same path as a real run


def blocking_hook(tmp_path: Path, name: str = "block", **options: Any) -> HookConfig:
    """A hook that signals it started, then waits for a release file."""
    code = f"""
        import os, time
        open({str(tmp_path / "started")!r}, 'a').write('x')
        while not os.path.exists({str(tmp_path / "release")!r}):
            time.sleep(0.01)
    """
    return hook(name, code, cooldown=0, **options)


def test_a_full_queue_drops_counts_and_audits(harnesses: list[Harness], tmp_path: Path) -> None:
    h = harness(harnesses, [blocking_hook(tmp_path)], queue_size=1)
    assert h.executor.submit(h.job("block", FP)) == "queued"
    wait_until((tmp_path / "started").exists)  # the worker is busy
    assert h.executor.submit(h.job("block", FP)) == "queued"  # waits in the queue
    dropped = h.job("block", FP2)
    assert h.executor.submit(dropped) == "dropped"
    assert h.stats.snapshot()[1] == {("block", "dropped"): 1}
    h.executor.sweep()  # the maintenance thread writes the audit record
    (record,) = h.store.audit_records()
    assert (record.id, record.outcome, record.fingerprint) == (dropped.id, "dropped", FP2)
    assert "queue is full" in record.detail
    (tmp_path / "release").touch()
    h.wait_finished(2)


def test_dropping_releases_the_cooldown(harnesses: list[Harness], tmp_path: Path) -> None:
    blocking = blocking_hook(tmp_path)
    h = harness(harnesses, [blocking, hook("cool", "pass", cooldown=60)], queue_size=1)
    h.executor.submit(h.job("block"))
    wait_until((tmp_path / "started").exists)
    h.executor.submit(h.job("block"))
    assert h.executor.submit(h.job("cool")) == "dropped"
    assert not h.executor.cooling("cool", FP, h.clock())  # it may try again
    (tmp_path / "release").touch()


def test_at_least_once_jobs_wait_in_the_store_when_the_queue_is_full(
    harnesses: list[Harness], tmp_path: Path
) -> None:
    h = harness(harnesses, [blocking_hook(tmp_path, delivery="at_least_once")], queue_size=1)
    h.executor.submit(h.job("block", FP))
    wait_until((tmp_path / "started").exists)
    h.executor.submit(h.job("block", FP))
    deferred = h.job("block", FP2)
    assert h.executor.submit(deferred) == "deferred"
    assert deferred.id in {job.id for job in h.store.pending_jobs()}
    (tmp_path / "release").touch()
    wait_until(lambda: len(h.finished) >= 2)
    h.executor.sweep()  # room again: the deferred job is queued
    records = h.wait_finished(3)
    assert deferred.id in {record.id for record in records}
    wait_until(lambda: h.store.pending_jobs() == [])


def test_at_least_once_jobs_interrupted_by_a_crash_run_after_restart(
    harnesses: list[Harness], tmp_path: Path
) -> None:
    store = sqlite_action_store(tmp_path / "a.db")
    config = hook("fix", "print('ran')", delivery="at_least_once")
    # A job saved before a crash (the process died before running it).
    orphan = HookJob(new_id(), "fix", "rule-1", "fix", facts(), 1.0)
    store.save_job(orphan)
    h = harness(harnesses, [config], store=store)
    (record,) = h.wait_finished(1)
    assert record.id == orphan.id
    assert record.output_tail == "ran\n"
    wait_until(lambda: store.pending_jobs() == [])


def test_stop_kills_running_hooks_and_keeps_at_least_once_jobs(tmp_path: Path) -> None:
    store = MemoryActionStore()
    h = Harness(
        [blocking_hook(tmp_path, delivery="at_least_once"), hook("later", "pass", cooldown=0)],
        store=store,
    )
    h.executor.start()
    durable = h.job("block")
    h.executor.submit(durable)
    wait_until((tmp_path / "started").exists)
    queued = h.job("later")
    h.executor.submit(queued)
    started = time.monotonic()
    h.executor.stop(timeout=0.4)
    assert time.monotonic() - started < 3
    records = {record.id: record for record in store.audit_records()}
    assert records[durable.id].outcome == "error"
    assert "cancelled" in records[durable.id].detail
    assert records[queued.id].outcome == "dropped"
    assert [job.id for job in store.pending_jobs()] == [durable.id]  # runs again next start
    assert h.executor.submit(h.job("later")) == "dropped"
    assert not any(t.name.startswith("faultlens-hook") for t in threading.enumerate())
