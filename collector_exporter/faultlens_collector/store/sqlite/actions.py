"""The action engine's tables in SQLite (:class:`SQLiteActionStore`).

All tables are prefixed ``action_`` and each row keeps its record as JSON next
to the few columns that are queried; they live in the processor's one database
file, next to the groups. :func:`apply_migrations` takes any ``sqlite3.Connection``
and brings these tables to the current version, recording it in
``faultlens_schema`` under the component name ``actions`` (a component keeping its
own version there under another name is unaffected).

The store writes through its :class:`~.connection.SQLiteFile`'s writer connection
under the file's lock, so what a committed write survives is the file's decision
(:mod:`.connection`: ``durable`` reaches halts, the alert outbox and hook jobs as it
reaches the groups). A database written by a newer faultlens is refused rather than
misread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

from faultlens_collector.actions.records import AuditRecord, FixRecord, HaltRecord, HookJob, dumps
from faultlens_collector.alerts.records import Alert, StoredAlert
from faultlens_collector.store.filters import audit_where
from faultlens_collector.store.sqlite.connection import SQLiteFile, transaction
from faultlens_collector.store.sqlite.connection import apply_migrations as migrate

COMPONENT: Final = "actions"

#: One tuple of statements per schema version; version N is MIGRATIONS[N - 1].
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE action_audit (
            id TEXT PRIMARY KEY, started_at REAL NOT NULL, hook TEXT NOT NULL,
            fingerprint TEXT NOT NULL, record TEXT NOT NULL)""",
        "CREATE INDEX action_audit_by_group ON action_audit (fingerprint, started_at)",
        "CREATE INDEX action_audit_by_hook ON action_audit (hook, started_at)",
        """CREATE TABLE action_halts (
            id TEXT PRIMARY KEY, since REAL NOT NULL, active INTEGER NOT NULL,
            record TEXT NOT NULL)""",
        "CREATE INDEX action_halts_active ON action_halts (active, since)",
        """CREATE TABLE action_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL, sent_at REAL, alert TEXT NOT NULL)""",
        "CREATE INDEX action_outbox_pending ON action_outbox (sent_at, seq)",
        """CREATE TABLE action_cooldowns (
            hook TEXT NOT NULL, fingerprint TEXT NOT NULL, until REAL NOT NULL,
            PRIMARY KEY (hook, fingerprint))""",
        """CREATE TABLE action_fixes (
            id TEXT PRIMARY KEY, hook TEXT NOT NULL, result TEXT NOT NULL,
            decided_at REAL, record TEXT NOT NULL)""",
        "CREATE INDEX action_fixes_by_hook ON action_fixes (hook, result, decided_at)",
        """CREATE TABLE action_jobs (
            id TEXT PRIMARY KEY, created_at REAL NOT NULL, job TEXT NOT NULL)""",
        "CREATE TABLE action_conditions (key TEXT PRIMARY KEY, since REAL NOT NULL)",
    ),
    (
        # The job that claimed a cooldown may run again after a crash (claim_cooldown).
        "ALTER TABLE action_cooldowns ADD COLUMN job_id TEXT NOT NULL DEFAULT ''",
    ),
    (
        # An alert held until then (root-cause linking), unless released first.
        "ALTER TABLE action_outbox ADD COLUMN held_until REAL",
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


def apply_migrations(connection: sqlite3.Connection) -> int:
    """Bring the ``action_*`` tables of ``connection`` to :data:`SCHEMA_VERSION`.

    Idempotent; returns the version found before. Raises
    :class:`~faultlens_collector.store.errors.SchemaError` when the database is newer.
    """
    return migrate(connection, COMPONENT, MIGRATIONS)


class SQLiteActionStore:
    """An :class:`~faultlens_collector.actions.store.ActionStore` in ``file`` (tables
    created and migrated here; take it from
    :meth:`.database.SQLiteDatabase.action_store`).

    ``max_audit_records`` bounds the audit trail: the oldest records beyond it are
    deleted (checked every 1000 insertions). Raises
    :class:`~faultlens_collector.store.errors.SchemaError` when the file cannot be used.
    """

    #: Only this processor writes the file.
    shared = False

    def __init__(self, file: SQLiteFile, *, max_audit_records: int = 100_000) -> None:
        self.path = file.path
        self.max_audit_records = max_audit_records
        self._lock = file.lock
        file.migrate(COMPONENT, MIGRATIONS, what="action store")
        self._db = file.connection()
        self._audit_inserts = 0

    @property
    def connection(self) -> sqlite3.Connection:
        """The file's writer connection."""
        return self._db

    def close(self) -> None:
        """Nothing to finish (every write is committed); the database closes the
        connection."""

    def versions(self) -> dict[str, int]:
        """Nothing to follow: only this processor writes the file."""
        return {}

    def _execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, parameters)

    def _rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    # audit
    def add_audit(self, record: AuditRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO action_audit VALUES (?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.started_at,
                    record.hook,
                    record.fingerprint,
                    dumps(record.as_json()),
                ),
            )
            self._audit_inserts += 1
            if self._audit_inserts % 1000 == 0:
                self._db.execute(
                    "DELETE FROM action_audit WHERE rowid <= "
                    "(SELECT MAX(rowid) FROM action_audit) - ?",
                    (self.max_audit_records,),
                )

    def audit_records(
        self, *, fingerprint: str | None = None, hook: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        where, parameters = audit_where("?", fingerprint=fingerprint, hook=hook)
        rows = self._rows(
            f"SELECT record FROM action_audit {where} ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (*parameters, limit),
        )
        return [AuditRecord.from_json(json.loads(row[0])) for row in rows]

    def audit_records_by_group(
        self, fingerprints: Sequence[str], per_group: int
    ) -> dict[str, list[AuditRecord]]:
        """One indexed query per :data:`_IN_BATCH` groups: a window function numbers each
        group's records newest first (action_audit_by_group) and keeps the first
        ``per_group``."""
        found: dict[str, list[AuditRecord]] = {}
        for batch in _batches(sorted(set(fingerprints))):
            rows = self._rows(
                "SELECT fingerprint, record FROM ("
                " SELECT fingerprint, record, started_at, rowid AS position, ROW_NUMBER() OVER ("
                "  PARTITION BY fingerprint ORDER BY started_at DESC, rowid DESC) AS n"
                f" FROM action_audit WHERE fingerprint IN ({_placeholders(batch)})"
                ") WHERE n <= ? ORDER BY fingerprint, started_at DESC, position DESC",
                (*batch, per_group),
            )
            for fingerprint, text in rows:
                found.setdefault(fingerprint, []).append(AuditRecord.from_json(json.loads(text)))
        return found

    # halts
    def save_halt(self, halt: HaltRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO action_halts VALUES (?, ?, ?, ?)",
            (halt.id, halt.since, int(halt.active), dumps(halt.as_json())),
        )

    def start_halt(self, halt: HaltRecord) -> HaltRecord:
        """Save ``halt`` unless an active halt of its rule holds its key; the halt in force."""
        with self._lock, transaction(self._db):
            for (text,) in self._db.execute("SELECT record FROM action_halts WHERE active = 1"):
                held = HaltRecord.from_json(json.loads(text))
                if held.rule == halt.rule and held.key == halt.key:
                    return held
            self._db.execute(
                "INSERT INTO action_halts VALUES (?, ?, 1, ?)",
                (halt.id, halt.since, dumps(halt.as_json())),
            )
        return halt

    def active_halts(self) -> list[HaltRecord]:
        rows = self._rows("SELECT record FROM action_halts WHERE active = 1 ORDER BY since")
        return [HaltRecord.from_json(json.loads(row[0])) for row in rows]

    def halt_history(self, limit: int = 100) -> list[HaltRecord]:
        rows = self._rows("SELECT record FROM action_halts ORDER BY since DESC LIMIT ?", (limit,))
        return [HaltRecord.from_json(json.loads(row[0])) for row in rows]

    # alert outbox
    def add_alert(self, alert: Alert) -> bool:
        cursor = self._execute(
            "INSERT OR IGNORE INTO action_outbox (alert_id, created_at, alert) VALUES (?, ?, ?)",
            (alert.id, alert.created_at, dumps(alert.as_json())),
        )
        return cursor.rowcount == 1

    def pending_alerts(self, limit: int) -> list[StoredAlert]:
        rows = self._rows(
            "SELECT seq, alert FROM action_outbox WHERE sent_at IS NULL "
            "AND (held_until IS NULL OR held_until <= ?) ORDER BY seq LIMIT ?",
            (time.time(), limit),
        )
        return [StoredAlert(int(seq), Alert.from_json(json.loads(text))) for seq, text in rows]

    def mark_alerts_sent(self, seqs: Sequence[int], sent_at: float) -> None:
        with self._lock, transaction(self._db):
            self._db.executemany(
                "UPDATE action_outbox SET sent_at = ? WHERE seq = ?",
                [(sent_at, seq) for seq in seqs],
            )

    def release_alerts(self) -> None:
        """Nothing to give back: one sender drains this file's outbox."""

    def hold_alert(self, alert: Alert, until: float) -> bool:
        cursor = self._execute(
            "INSERT OR IGNORE INTO action_outbox (alert_id, created_at, alert, held_until) "
            "VALUES (?, ?, ?, ?)",
            (alert.id, alert.created_at, dumps(alert.as_json()), until),
        )
        return cursor.rowcount == 1

    def settle_held_alert(self, alert_id: str, *, send: bool) -> bool:
        sql = "UPDATE action_outbox SET held_until = NULL" if send else "DELETE FROM action_outbox"
        cursor = self._execute(f"{sql} WHERE alert_id = ? AND held_until IS NOT NULL", (alert_id,))
        return cursor.rowcount == 1

    def release_held_alerts(self) -> int:
        return self._execute(
            "UPDATE action_outbox SET held_until = NULL WHERE held_until IS NOT NULL"
        ).rowcount

    def prune_sent_alerts(self, before: float) -> int:
        cursor = self._execute(
            "DELETE FROM action_outbox WHERE sent_at IS NOT NULL AND sent_at < ?", (before,)
        )
        return cursor.rowcount

    # hook state
    def set_cooldown(self, hook: str, fingerprint: str, until: float) -> None:
        self._execute(
            "INSERT OR REPLACE INTO action_cooldowns (hook, fingerprint, until) VALUES (?, ?, ?)",
            (hook, fingerprint, until),
        )

    def claim_cooldown(
        self, hook: str, fingerprint: str, until: float, *, now: float, job_id: str
    ) -> bool:
        """Start the cooldown unless one runs at ``now`` for another job."""
        return (
            self._execute(
                "INSERT INTO action_cooldowns (hook, fingerprint, until, job_id) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (hook, fingerprint) DO UPDATE SET "
                "until = excluded.until, job_id = excluded.job_id "
                "WHERE action_cooldowns.until <= ? OR action_cooldowns.job_id = excluded.job_id",
                (hook, fingerprint, until, job_id, now),
            ).rowcount
            == 1
        )

    def cooldowns(self, now: float) -> dict[tuple[str, str], float]:
        rows = self._rows(
            "SELECT hook, fingerprint, until FROM action_cooldowns WHERE until > ?", (now,)
        )
        return {(hook, fingerprint): float(until) for hook, fingerprint, until in rows}

    def prune_cooldowns(self, now: float) -> int:
        return self._execute("DELETE FROM action_cooldowns WHERE until <= ?", (now,)).rowcount

    def save_fix(self, fix: FixRecord) -> None:
        self._execute(
            "INSERT OR REPLACE INTO action_fixes VALUES (?, ?, ?, ?, ?)",
            (fix.id, fix.hook, fix.result, fix.decided_at, dumps(fix.as_json())),
        )

    def pending_fixes(self) -> list[FixRecord]:
        rows = self._rows("SELECT record FROM action_fixes WHERE result = 'pending'")
        return [FixRecord.from_json(json.loads(row[0])) for row in rows]

    def fixes_by_id(self, ids: Sequence[str]) -> dict[str, FixRecord]:
        found: dict[str, FixRecord] = {}
        for batch in _batches(sorted(set(ids))):
            rows = self._rows(
                f"SELECT record FROM action_fixes WHERE id IN ({_placeholders(batch)})", batch
            )
            for (text,) in rows:
                fix = FixRecord.from_json(json.loads(text))
                found[fix.id] = fix
        return found

    def decided_fixes(self, hook: str, limit: int) -> list[FixRecord]:
        rows = self._rows(
            "SELECT record FROM action_fixes WHERE hook = ? AND result != 'pending' "
            "ORDER BY decided_at DESC LIMIT ?",
            (hook, limit),
        )
        return [FixRecord.from_json(json.loads(row[0])) for row in rows]

    def save_job(self, job: HookJob) -> None:
        self._execute(
            "INSERT OR REPLACE INTO action_jobs VALUES (?, ?, ?)",
            (job.id, job.created_at, dumps(job.as_json())),
        )

    def delete_job(self, job_id: str) -> None:
        self._execute("DELETE FROM action_jobs WHERE id = ?", (job_id,))

    def pending_jobs(self) -> list[HookJob]:
        rows = self._rows("SELECT job FROM action_jobs ORDER BY created_at")
        return [HookJob.from_json(json.loads(row[0])) for row in rows]

    def hold_jobs(self) -> None:
        """Nothing to renew: no other processor takes this file's jobs."""

    def release_jobs(self) -> None:
        """Nothing to give back: no other processor takes this file's jobs."""

    # conditions
    def conditions(self) -> set[str]:
        return {row[0] for row in self._rows("SELECT key FROM action_conditions")}

    def raise_condition(self, key: str, since: float) -> bool:
        return (
            self._execute(
                "INSERT OR IGNORE INTO action_conditions VALUES (?, ?)", (key, since)
            ).rowcount
            == 1
        )

    def clear_conditions(self, keys: Iterable[str]) -> None:
        with self._lock, transaction(self._db):
            self._db.executemany(
                "DELETE FROM action_conditions WHERE key = ?", [(key,) for key in keys]
            )


#: Values bound to one ``IN (…)`` list (SQLite allows 32,766 variables from 3.32, 999 before).
_IN_BATCH: Final = 500


def _batches(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_BATCH):
        yield values[start : start + _IN_BATCH]


def _placeholders(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))
