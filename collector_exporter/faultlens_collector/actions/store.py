"""What the action engine persists, as Protocols, and an in-memory implementation.

The engine needs five kinds of state to survive a restart:

* the **audit** trail of hook executions (:class:`AuditLog`);
* **halts**, active and lifted (:class:`HaltStore`);
* the **alert outbox**: alerts written before they are sent, marked sent once the
  next hop acknowledged them (:class:`~faultlens_collector.alerts.outbox.AlertOutbox`);
* **hook state**: cooldowns, fixes awaiting verification and decided ones, and
  queued ``at_least_once`` jobs (:class:`HookStateStore`);
* raised alert **conditions**, so a restart does not re-send an alert for a
  condition that is still the same occurrence (:class:`ConditionStore`).

:class:`ActionStore` is all of them. A store may be **shared** by several processors
(the PostgreSQL backend): then the decisions that must be taken once for the fleet
are taken by the store — :meth:`HaltStore.start_halt` (one active halt per rule and
key), :meth:`HookStateStore.claim_cooldown` (one hook run per cooldown),
:meth:`ConditionStore.raise_condition` (one alert per condition), the outbox and the
job queue hand each alert and job to one processor at a time — and the engine
follows the others' changes through :meth:`ActionStore.versions`. A store used by
one processor (:class:`MemoryActionStore`, SQLite) answers the same calls for that
processor alone. :class:`MemoryActionStore` keeps them in
dicts (tests, an engine on its own); a database keeps them next to the groups
(:meth:`faultlens_collector.store.database.Database.action_store`).
Implementations must be safe to call from several threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from faultlens_collector.actions.records import AuditRecord, FixRecord, HaltRecord, HookJob
from faultlens_collector.alerts.outbox import AlertOutbox
from faultlens_collector.alerts.records import Alert, StoredAlert


class AuditLog(Protocol):
    def add_audit(self, record: AuditRecord) -> None:
        """Append one execution record."""
        ...

    def audit_records(
        self, *, fingerprint: str | None = None, hook: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """The newest records first, optionally only one group's or one hook's."""
        ...

    def audit_records_by_group(
        self, fingerprints: Sequence[str], per_group: int
    ) -> dict[str, list[AuditRecord]]:
        """Each named group's newest ``per_group`` records, newest first (a group
        without records is left out). One query for many groups: what a group export
        reads."""
        ...


class HaltStore(Protocol):
    def save_halt(self, halt: HaltRecord) -> None:
        """Insert or replace a halt (by id)."""
        ...

    def start_halt(self, halt: HaltRecord) -> HaltRecord:
        """Save the new ``halt`` unless an active halt of the same rule holds the same
        key; the halt in force for that rule and key (``halt`` itself when it was
        saved)."""
        ...

    def active_halts(self) -> list[HaltRecord]:
        """Halts not resumed, oldest first."""
        ...

    def halt_history(self, limit: int = 100) -> list[HaltRecord]:
        """Every halt, active or lifted, newest first."""
        ...


class HookStateStore(Protocol):
    def set_cooldown(self, hook: str, fingerprint: str, until: float) -> None: ...

    def claim_cooldown(
        self, hook: str, fingerprint: str, until: float, *, now: float, job_id: str
    ) -> bool:
        """Start the cooldown of (``hook``, group) until ``until`` unless one still runs
        at ``now`` for another job; True when job ``job_id`` may run (it claimed the
        cooldown, or claimed it before and runs again after a crash)."""
        ...

    def cooldowns(self, now: float) -> dict[tuple[str, str], float]:
        """Cooldowns still running at ``now``: (hook, fingerprint) -> until."""
        ...

    def prune_cooldowns(self, now: float) -> int: ...

    def save_fix(self, fix: FixRecord) -> None:
        """Insert or replace a fix (by id)."""
        ...

    def pending_fixes(self) -> list[FixRecord]: ...

    def fixes_by_id(self, ids: Sequence[str]) -> dict[str, FixRecord]:
        """The fixes with these ids (a fix's id is its hook run's), pending or decided;
        ids without a fix are left out."""
        ...

    def decided_fixes(self, hook: str, limit: int) -> list[FixRecord]:
        """The hook's verified or failed fixes, newest decision first."""
        ...

    def save_job(self, job: HookJob) -> None: ...

    def delete_job(self, job_id: str) -> None: ...

    def pending_jobs(self) -> list[HookJob]:
        """Jobs saved and not deleted, oldest first (a shared store: those this processor
        holds, and those another processor stopped holding, now held by this one)."""
        ...

    def hold_jobs(self) -> None:
        """Tell a shared store this processor still holds its jobs (renews their lease)."""
        ...

    def release_jobs(self) -> None:
        """Give back the jobs this processor holds (a shared store hands them to another)."""
        ...


class ConditionStore(Protocol):
    def conditions(self) -> set[str]:
        """Every raised condition key."""
        ...

    def raise_condition(self, key: str, since: float) -> bool:
        """Raise ``key``; True when it was not raised before (by anyone)."""
        ...

    def clear_conditions(self, keys: Iterable[str]) -> None: ...


@runtime_checkable
class ActionStore(AuditLog, HaltStore, AlertOutbox, HookStateStore, ConditionStore, Protocol):
    """Everything the action engine persists."""

    @property
    def shared(self) -> bool:
        """Whether other processors write this store too."""
        ...

    def versions(self) -> dict[str, int]:
        """For a shared store, a number per kind of state other processors change
        (``halts``, ``conditions``, ``fixes``) that grows with every change; empty for
        a store only this processor writes."""
        ...

    def close(self) -> None: ...


class MemoryActionStore:
    """An :class:`ActionStore` in memory: nothing survives the process."""

    shared = False

    def __init__(self) -> None:
        self._lock = threading.RLock()  # hold_alert adds under it
        self._audit: list[AuditRecord] = []
        self._halts: dict[str, HaltRecord] = {}
        self._alerts: dict[int, tuple[Alert, float | None]] = {}
        self._alert_ids: set[str] = set()
        self._held_until: dict[int, float] = {}  # seq → held until (epoch seconds)
        self._next_seq = 1
        self._cooldowns: dict[tuple[str, str], float] = {}
        self._cooldown_jobs: dict[tuple[str, str], str] = {}
        self._fixes: dict[str, FixRecord] = {}
        self._jobs: dict[str, HookJob] = {}
        self._conditions: dict[str, float] = {}

    def close(self) -> None:
        pass

    def versions(self) -> dict[str, int]:
        return {}

    def add_audit(self, record: AuditRecord) -> None:
        with self._lock:
            self._audit.append(record)

    def audit_records(
        self, *, fingerprint: str | None = None, hook: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        with self._lock:
            found = [
                record
                for record in reversed(self._audit)
                if (fingerprint is None or record.fingerprint == fingerprint)
                and (hook is None or record.hook == hook)
            ]
        return found[:limit]

    def audit_records_by_group(
        self, fingerprints: Sequence[str], per_group: int
    ) -> dict[str, list[AuditRecord]]:
        wanted = set(fingerprints)
        found: dict[str, list[AuditRecord]] = {}
        with self._lock:
            newest_first = sorted(
                enumerate(self._audit), key=lambda item: (item[1].started_at, item[0]), reverse=True
            )
        for _, record in newest_first:
            if record.fingerprint in wanted:
                runs = found.setdefault(record.fingerprint, [])
                if len(runs) < per_group:
                    runs.append(record)
        return found

    def save_halt(self, halt: HaltRecord) -> None:
        with self._lock:
            self._halts[halt.id] = halt

    def start_halt(self, halt: HaltRecord) -> HaltRecord:
        with self._lock:
            for held in self._halts.values():
                if held.active and held.rule == halt.rule and held.key == halt.key:
                    return held
            self._halts[halt.id] = halt
            return halt

    def active_halts(self) -> list[HaltRecord]:
        with self._lock:
            return sorted((h for h in self._halts.values() if h.active), key=lambda h: h.since)

    def halt_history(self, limit: int = 100) -> list[HaltRecord]:
        with self._lock:
            return sorted(self._halts.values(), key=lambda h: h.since, reverse=True)[:limit]

    def add_alert(self, alert: Alert) -> bool:
        with self._lock:
            if alert.id in self._alert_ids:
                return False
            self._alert_ids.add(alert.id)
            self._alerts[self._next_seq] = (alert, None)
            self._next_seq += 1
            return True

    def pending_alerts(self, limit: int) -> list[StoredAlert]:
        now = time.time()
        with self._lock:
            pending = [
                StoredAlert(seq, alert)
                for seq, (alert, sent_at) in self._alerts.items()
                if sent_at is None and self._held_until.get(seq, 0.0) <= now
            ]
        return pending[:limit]

    def hold_alert(self, alert: Alert, until: float) -> bool:
        with self._lock:
            if not self.add_alert(alert):
                return False
            self._held_until[self._next_seq - 1] = until
            return True

    def settle_held_alert(self, alert_id: str, *, send: bool) -> bool:
        with self._lock:
            seq = next(
                (seq for seq in self._held_until if self._alerts[seq][0].id == alert_id), None
            )
            if seq is None:
                return False
            del self._held_until[seq]
            if not send:
                del self._alerts[seq]
                self._alert_ids.discard(alert_id)
            return True

    def release_held_alerts(self) -> int:
        with self._lock:
            released = len(self._held_until)
            self._held_until.clear()
            return released

    def mark_alerts_sent(self, seqs: Sequence[int], sent_at: float) -> None:
        with self._lock:
            for seq in seqs:
                if seq in self._alerts:
                    self._alerts[seq] = (self._alerts[seq][0], sent_at)

    def release_alerts(self) -> None:
        pass

    def prune_sent_alerts(self, before: float) -> int:
        with self._lock:
            old = [
                seq
                for seq, (_, sent_at) in self._alerts.items()
                if sent_at is not None and sent_at < before
            ]
            for seq in old:
                self._alert_ids.discard(self._alerts.pop(seq)[0].id)
            return len(old)

    def set_cooldown(self, hook: str, fingerprint: str, until: float) -> None:
        with self._lock:
            self._cooldowns[(hook, fingerprint)] = until

    def claim_cooldown(
        self, hook: str, fingerprint: str, until: float, *, now: float, job_id: str
    ) -> bool:
        key = (hook, fingerprint)
        with self._lock:
            if self._cooldowns.get(key, 0.0) > now and self._cooldown_jobs.get(key) != job_id:
                return False
            self._cooldowns[key] = until
            self._cooldown_jobs[key] = job_id
            return True

    def cooldowns(self, now: float) -> dict[tuple[str, str], float]:
        with self._lock:
            return {key: until for key, until in self._cooldowns.items() if until > now}

    def prune_cooldowns(self, now: float) -> int:
        with self._lock:
            expired = [key for key, until in self._cooldowns.items() if until <= now]
            for key in expired:
                del self._cooldowns[key]
            return len(expired)

    def save_fix(self, fix: FixRecord) -> None:
        with self._lock:
            self._fixes[fix.id] = fix

    def pending_fixes(self) -> list[FixRecord]:
        with self._lock:
            return [fix for fix in self._fixes.values() if fix.result == "pending"]

    def fixes_by_id(self, ids: Sequence[str]) -> dict[str, FixRecord]:
        with self._lock:
            return {fix_id: self._fixes[fix_id] for fix_id in ids if fix_id in self._fixes}

    def decided_fixes(self, hook: str, limit: int) -> list[FixRecord]:
        with self._lock:
            decided = [f for f in self._fixes.values() if f.hook == hook and f.result != "pending"]
        decided.sort(key=lambda fix: fix.decided_at or 0.0, reverse=True)
        return decided[:limit]

    def save_job(self, job: HookJob) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def delete_job(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def pending_jobs(self) -> list[HookJob]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.created_at)

    def hold_jobs(self) -> None:
        pass

    def release_jobs(self) -> None:
        pass

    def conditions(self) -> set[str]:
        with self._lock:
            return set(self._conditions)

    def raise_condition(self, key: str, since: float) -> bool:
        with self._lock:
            if key in self._conditions:
                return False
            self._conditions[key] = since
            return True

    def clear_conditions(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._conditions.pop(key, None)
