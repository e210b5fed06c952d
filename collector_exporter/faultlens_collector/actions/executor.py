"""Hook execution off the caller's thread.

:meth:`HookExecutor.submit` is what the ingest path calls: it checks the
cooldown of (hook, group) in memory and puts the job on a bounded queue without
ever blocking. A full queue drops the job — counted, and audited (the audit
record is written later by a worker, not on the caller's thread) — except for
``at_least_once`` hooks, whose jobs are saved in the store first: those wait
there and are queued again when there is room, or after a restart.

A fixed pool of worker threads runs the jobs with
:func:`~faultlens_collector.actions.runner.run_process`. Whatever a hook does —
hang, crash, flood its output, fail to start — ends in one
:class:`~faultlens_collector.actions.records.AuditRecord`, and nothing it does
reaches the caller. ``dry_run`` (per hook, or for the whole engine) goes through
the same path, cooldown included, but starts no process.

Delivery: ``at_most_once`` (default) jobs live only in memory — a job queued or
running when the processor dies is lost, never repeated. ``at_least_once`` jobs
are deleted from the store only after their audit record is written — a job
interrupted by a crash runs again after the restart.

A fix's cooldown is *claimed* in the store just before its hook starts
(:meth:`~faultlens_collector.actions.store.HookStateStore.claim_cooldown`): when
several processors share the store, the first to claim it runs the hook and the
others skip their job (counted as a ``cooldown`` skip), so a hook runs once per group
per cooldown in the whole fleet. With a shared store the workers also renew the
leases of the ``at_least_once`` jobs this processor holds, and every
:data:`CLAIM_INTERVAL` seconds take over the jobs of a processor that stopped
renewing its own (it died): they run here.
"""

from __future__ import annotations

import logging
import queue
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final, Literal, Protocol

from faultlens.shared import Redactor, report_internal_error

from faultlens_collector.actions.config import EngineConfig, HookConfig, program_exists
from faultlens_collector.actions.hookenv import argv_for, environment_for, stdin_for
from faultlens_collector.actions.hookstats import HookStats
from faultlens_collector.actions.records import AuditRecord, HookJob, Outcome
from faultlens_collector.actions.runner import ProcessResult, run_process
from faultlens_collector.actions.store import AuditLog, HookStateStore

_log = logging.getLogger("faultlens.actions")

Submitted = Literal["queued", "deferred", "cooldown", "dropped"]
_STOP: Final = None
_MAX_PENDING_DROPS: Final = 1000
#: How often (seconds) a processor on a shared store looks for other processors'
#: abandoned ``at_least_once`` jobs.
CLAIM_INTERVAL: Final = 5.0


class ExecutorStore(AuditLog, HookStateStore, Protocol):
    """What the executor persists."""


class HookExecutor:
    """A bounded queue of :class:`HookJob` and the worker threads that run them."""

    def __init__(
        self,
        hooks: Mapping[str, HookConfig],
        config: EngineConfig,
        store: ExecutorStore,
        *,
        clock: Callable[[], float],
        stats: HookStats,
        on_finished: Callable[[HookJob, AuditRecord], None],
        redactor: Redactor | None = None,
    ) -> None:
        self.hooks = hooks
        self.config = config
        self._store = store
        self._clock = clock
        self._stats = stats
        self._on_finished = on_finished
        self._redactor = redactor or Redactor()
        self._queue: queue.Queue[HookJob | None] = queue.Queue(config.queue_size)
        self._cooldowns: dict[tuple[str, str], float] = {}
        self._cooldown_lock = threading.Lock()
        self._durable_ids: set[str] = set()
        self._durable_lock = threading.Lock()
        self._deferred = False
        self._dropped: deque[AuditRecord] = deque(maxlen=_MAX_PENDING_DROPS)
        self._cancel = threading.Event()
        self._stopping = False
        self._workers: list[threading.Thread] = []
        self._next_claim = 0.0

    # lifecycle
    def start(self) -> None:
        """Load cooldowns and interrupted ``at_least_once`` jobs; start the workers."""
        now = self._clock()
        with self._cooldown_lock:
            self._cooldowns.update(self._store.cooldowns(now))
        for index in range(self.config.workers):
            worker = threading.Thread(
                target=self._work, name=f"faultlens-hook-{index}", daemon=True
            )
            worker.start()
            self._workers.append(worker)
        self._deferred = True
        self.sweep()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking jobs, let running hooks finish for ``timeout`` seconds, then kill
        them. Queued ``at_most_once`` jobs are audited as dropped; ``at_least_once``
        ones stay in the store for the next start."""
        self._stopping = True
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None and not self._is_durable(job):
                self._drop(job, "the engine stopped before it ran")
        for _ in self._workers:
            self._queue.put(_STOP)
        half = timeout / 2
        for worker in self._workers:
            worker.join(half)
        if any(worker.is_alive() for worker in self._workers):
            self._cancel.set()
            for worker in self._workers:
                worker.join(half)
        self._workers.clear()
        self._flush_drops()

    # submission (caller's thread: never blocks)
    def submit(self, job: HookJob, *, cooldown: bool = True) -> Submitted:
        """Queue ``job``; ``cooldown`` applies the hook's cooldown for the job's group."""
        hook = self.hooks.get(job.hook)
        if hook is None or self._stopping:
            self._drop(job, "unknown hook" if hook is None else "the engine is stopping")
            return "dropped"
        reserved = None
        if cooldown and hook.cooldown > 0:
            reserved = (hook.name, job.facts.fingerprint)
            if not self._reserve(reserved, job.created_at, hook.cooldown):
                self._stats.skipped(hook.name, "cooldown")
                return "cooldown"
        durable = hook.delivery == "at_least_once"
        if durable:
            self._store.save_job(job)
            with self._durable_lock:
                self._durable_ids.add(job.id)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            if durable:
                with self._durable_lock:
                    self._durable_ids.discard(job.id)
                self._deferred = True
                self._stats.skipped(hook.name, "deferred")
                return "deferred"
            if reserved is not None:
                with self._cooldown_lock:
                    self._cooldowns.pop(reserved, None)
            self._drop(job, f"the hook queue is full ({self.config.queue_size} jobs)")
            return "dropped"
        return "queued"

    def plan(self, hook: str, fingerprint: str, now: float) -> tuple[bool, str]:
        """Whether a fix job of ``hook`` for the group would run now, and how (or why
        not) — changing nothing (a self-test's dry run)."""
        config = self.hooks.get(hook)
        if config is None:
            return False, "no such hook"
        if self._stopping:
            return False, "the engine is stopping"
        if config.cooldown > 0 and self._cooldowns.get((hook, fingerprint), 0.0) > now:
            return False, "cooling down for this group"
        if self._queue.full() and config.delivery != "at_least_once":
            return False, f"the hook queue is full ({self.config.queue_size} jobs)"
        if config.dry_run or self.config.dry_run:
            return True, "dry_run is set: audited, no process started"
        if config.callable is not None:
            return True, f"calls {config.callable}"
        assert config.command is not None
        if not program_exists(config.command[0], config.cwd):
            return False, f"program {config.command[0]!r} not found (or not executable)"
        arguments = len(config.command) - 1
        more = f" with {arguments} argument{'s' if arguments != 1 else ''}" if arguments else ""
        return True, f"runs {config.command[0]}{more}"

    def cooling(self, hook: str, fingerprint: str, now: float) -> bool:
        """True (and counted as a skip) while (hook, group) is in its cooldown: lets the
        caller skip building a job. :meth:`submit` checks again, atomically."""
        if self._cooldowns.get((hook, fingerprint), 0.0) > now:
            self._stats.skipped(hook, "cooldown")
            return True
        return False

    def _reserve(self, key: tuple[str, str], now: float, seconds: float) -> bool:
        with self._cooldown_lock:
            if self._cooldowns.get(key, 0.0) > now:
                return False
            self._cooldowns[key] = now + seconds
            return True

    def _drop(self, job: HookJob, why: str) -> None:
        self._stats.skipped(job.hook, "dropped")
        self._dropped.append(
            AuditRecord(
                id=job.id,
                started_at=job.created_at,
                purpose=job.purpose,
                rule=job.rule,
                hook=job.hook,
                fingerprint=job.facts.fingerprint,
                outcome="dropped",
                exit_code=None,
                duration=0.0,
                detail=f"not run: {why}",
                requested_by=job.requested_by,
            )
        )

    def _is_durable(self, job: HookJob) -> bool:
        hook = self.hooks.get(job.hook)
        return hook is not None and hook.delivery == "at_least_once"

    # maintenance (maintenance thread)
    def sweep(self) -> None:
        """Write pending drop audits, queue deferred ``at_least_once`` jobs, prune
        expired cooldowns; with a shared store, renew this processor's job leases and
        take over abandoned jobs every :data:`CLAIM_INTERVAL` seconds."""
        self._flush_drops()
        now = self._clock()
        with self._cooldown_lock:
            for key in [key for key, until in self._cooldowns.items() if until <= now]:
                del self._cooldowns[key]
        if getattr(self._store, "shared", False) and not self._stopping:
            if self._durable_ids:
                self._store.hold_jobs()
            if time.monotonic() >= self._next_claim:
                self._next_claim = time.monotonic() + CLAIM_INTERVAL
                self._deferred = True
        if not self._deferred or self._stopping:
            return
        self._deferred = False
        for job in self._store.pending_jobs():
            with self._durable_lock:
                if job.id in self._durable_ids:
                    continue
                self._durable_ids.add(job.id)
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                with self._durable_lock:
                    self._durable_ids.discard(job.id)
                self._deferred = True
                return

    def _flush_drops(self) -> None:
        while self._dropped:
            record = self._dropped.popleft()
            try:
                self._store.add_audit(record)
            except Exception:
                report_internal_error("actions: audit of a dropped hook job")

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    # workers
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            try:
                self._run(job)
            except Exception:  # pragma: no cover - _run already contains every failure
                _log.exception("faultlens: hook worker error")

    def _run(self, job: HookJob) -> None:
        if not self._claim_cooldown(job):
            self._stats.skipped(job.hook, "cooldown")
            if self._is_durable(job):
                self._forget_job(job)
            return
        record = self._execute(job)
        try:
            self._store.add_audit(record)
        except Exception:
            report_internal_error("actions: audit write")
        self._stats.executed(record)
        try:
            self._on_finished(job, record)
        except Exception:
            report_internal_error("actions: after a hook execution")
        if self._is_durable(job) and "cancelled" not in record.detail:
            self._forget_job(job)
        self._flush_drops()

    def _forget_job(self, job: HookJob) -> None:
        """Delete a finished (or skipped) ``at_least_once`` job from the store."""
        try:
            self._store.delete_job(job.id)
        except Exception:
            report_internal_error("actions: job delete")
        with self._durable_lock:
            self._durable_ids.discard(job.id)

    def _claim_cooldown(self, job: HookJob) -> bool:
        """Claim the cooldown of a fix in the store *before* its hook starts: a processor
        killed while the hook runs finds it after the restart and does not run the hook
        again early, and of several processors sharing the store only the first to claim
        runs it. False: another job holds the cooldown (this one must not run). A store
        that cannot be written does not stop the hook (as before the fleet)."""
        hook = self.hooks.get(job.hook)
        if (
            job.purpose != "fix"
            or hook is None
            or hook.cooldown <= 0
            or hook.dry_run
            or self.config.dry_run
        ):
            return True
        until = job.created_at + hook.cooldown
        try:
            claimed = self._store.claim_cooldown(
                hook.name, job.facts.fingerprint, until, now=job.created_at, job_id=job.id
            )
        except Exception:
            report_internal_error("actions: cooldown claim")
            return True
        if not claimed:
            with self._cooldown_lock:
                key = (hook.name, job.facts.fingerprint)
                self._cooldowns[key] = max(self._cooldowns.get(key, 0.0), until)
        return claimed

    def _execute(self, job: HookJob) -> AuditRecord:
        started = self._clock()
        hook = self.hooks.get(job.hook)
        outcome: Outcome
        exit_code: int | None = None
        duration = 0.0
        tail = ""
        try:
            if hook is None:
                outcome, detail = "error", f"no hook named {job.hook!r} in the configuration"
            elif hook.dry_run or self.config.dry_run:
                outcome = "dry_run"
                detail = f"dry run: would run {shlex.join(argv_for(hook))}"
            else:
                result = run_process(
                    argv_for(hook),
                    stdin=stdin_for(job),
                    env=environment_for(hook, job),
                    cwd=hook.cwd,
                    timeout=hook.timeout,
                    kill_grace=self.config.kill_grace,
                    output_limit=self.config.output_limit,
                    cancel=self._cancel,
                )
                outcome, detail = _judge(result, hook.timeout)
                exit_code, duration = result.exit_code, result.duration
                tail = self._redactor.redact(result.output_tail)
        except Exception as exc:
            report_internal_error("actions: hook execution")
            outcome, detail = "error", f"internal error: {type(exc).__name__}: {exc}"
        return AuditRecord(
            id=job.id,
            started_at=started,
            purpose=job.purpose,
            rule=job.rule,
            hook=job.hook,
            fingerprint=job.facts.fingerprint,
            outcome=outcome,
            exit_code=exit_code,
            duration=duration,
            output_tail=tail,
            detail=detail,
            requested_by=job.requested_by,
        )


def _judge(result: ProcessResult, timeout: float) -> tuple[Outcome, str]:
    if result.error is not None:
        return "error", result.error
    if result.cancelled:
        return "error", "cancelled: the engine stopped while the hook ran"
    if result.timed_out:
        return "timeout", f"timed out after {timeout:g} s; its process group was killed"
    if result.exit_code == 0:
        return "ok", "exited 0"
    if result.exit_code is not None and result.exit_code < 0:
        return "failed", f"killed by signal {-result.exit_code}"
    return "failed", f"exited {result.exit_code}"
