"""The action engine's tables in PostgreSQL (:class:`PostgresActionStore`), shared by
every processor of the fleet.

The tables are the SQLite backend's (:mod:`..sqlite.actions`), and where N processors
could each decide the same thing, the database decides once:

* **halts** — at most one *active* halt per halt rule and key (a partial unique
  index): :meth:`~PostgresActionStore.start_halt` inserts a halt or returns the one
  another processor started first, so a halt, its alert and its halt hooks happen
  once in the fleet;
* **cooldowns** — :meth:`~PostgresActionStore.claim_cooldown` is one
  ``INSERT … ON CONFLICT DO UPDATE … WHERE until <= now``: of the processors that
  want to run a hook for a group, the first to claim the cooldown runs it; the rest
  skip it until the cooldown ends;
* **raised conditions** — :meth:`~PostgresActionStore.raise_condition` says whether
  this call raised it (and so alerts);
* **the alert outbox and the hook job queue** are claimed with leases: a processor
  takes unsent alerts (or interrupted ``at_least_once`` jobs) with ``UPDATE … WHERE
  … FOR UPDATE SKIP LOCKED``, marking them as its own for a while; alerts it has
  not sent by then, or jobs whose lease it stopped renewing (it died), are taken by
  another. Lease times are the database server's clock, never a processor's.

Every processor follows the others' halts, conditions and fixes through
:meth:`~PostgresActionStore.versions`: a statement-level trigger bumps a row of
``faultlens_changes`` whenever one of those tables changes, and a processor polls
those few rows (twice a second) and reloads what changed — nothing on the ingest
path, no ``LISTEN``/``NOTIFY``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from faultlens_collector.actions.records import AuditRecord, FixRecord, HaltRecord, HookJob, dumps
from faultlens_collector.alerts.records import Alert, StoredAlert
from faultlens_collector.store.filters import audit_where
from faultlens_collector.store.postgres.server import (
    PostgresServer,
    Retry,
    changed_rows,
    holder_name,
)

if TYPE_CHECKING:
    import psycopg

COMPONENT: Final = "actions"
#: The kinds of state every processor follows (:meth:`PostgresActionStore.versions`).
TOPICS: Final = ("halts", "conditions", "fixes")
#: The database server's clock, in epoch seconds.
_NOW: Final = "extract(epoch from clock_timestamp())"

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE action_audit (
            id TEXT PRIMARY KEY, seq BIGSERIAL, started_at DOUBLE PRECISION NOT NULL,
            hook TEXT NOT NULL, fingerprint TEXT NOT NULL, record TEXT NOT NULL)""",
        "CREATE INDEX action_audit_by_time ON action_audit (started_at, seq)",
        "CREATE INDEX action_audit_by_group ON action_audit (fingerprint, started_at)",
        "CREATE INDEX action_audit_by_hook ON action_audit (hook, started_at)",
        """CREATE TABLE action_halts (
            id TEXT PRIMARY KEY, since DOUBLE PRECISION NOT NULL, active BOOLEAN NOT NULL,
            rule TEXT NOT NULL, halt_key TEXT NOT NULL, record TEXT NOT NULL)""",
        "CREATE UNIQUE INDEX action_halts_one_per_key ON action_halts (rule, halt_key) "
        "WHERE active",
        """CREATE TABLE action_outbox (
            seq BIGSERIAL PRIMARY KEY, alert_id TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL, sent_at DOUBLE PRECISION,
            leased_by TEXT, lease_until DOUBLE PRECISION, alert TEXT NOT NULL)""",
        "CREATE INDEX action_outbox_pending ON action_outbox (seq) WHERE sent_at IS NULL",
        "CREATE INDEX action_outbox_sent ON action_outbox (sent_at) WHERE sent_at IS NOT NULL",
        """CREATE TABLE action_cooldowns (
            hook TEXT NOT NULL, fingerprint TEXT NOT NULL, until DOUBLE PRECISION NOT NULL,
            job_id TEXT NOT NULL DEFAULT '', PRIMARY KEY (hook, fingerprint))""",
        """CREATE TABLE action_fixes (
            id TEXT PRIMARY KEY, hook TEXT NOT NULL, result TEXT NOT NULL,
            decided_at DOUBLE PRECISION, record TEXT NOT NULL)""",
        "CREATE INDEX action_fixes_by_hook ON action_fixes (hook, result, decided_at)",
        """CREATE TABLE action_jobs (
            id TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL, leased_by TEXT,
            lease_until DOUBLE PRECISION NOT NULL, job TEXT NOT NULL)""",
        "CREATE TABLE action_conditions (key TEXT PRIMARY KEY, since DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE faultlens_changes (topic TEXT PRIMARY KEY, version BIGINT NOT NULL)",
        "INSERT INTO faultlens_changes VALUES ('halts', 0), ('conditions', 0), ('fixes', 0)",
        """CREATE FUNCTION faultlens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE faultlens_changes SET version = version + 1 WHERE topic = TG_ARGV[0];
                RETURN NULL;
            END $$""",
        "CREATE TRIGGER action_halts_changed AFTER INSERT OR UPDATE OR DELETE ON action_halts "
        "FOR EACH STATEMENT EXECUTE FUNCTION faultlens_changed('halts')",
        "CREATE TRIGGER action_conditions_changed AFTER INSERT OR UPDATE OR DELETE "
        "ON action_conditions FOR EACH STATEMENT EXECUTE FUNCTION faultlens_changed('conditions')",
        "CREATE TRIGGER action_fixes_changed AFTER INSERT OR UPDATE OR DELETE ON action_fixes "
        "FOR EACH STATEMENT EXECUTE FUNCTION faultlens_changed('fixes')",
    ),
    (
        # An alert held until then (root-cause linking; epoch seconds), unless released.
        "ALTER TABLE action_outbox ADD COLUMN held_until DOUBLE PRECISION",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def halt_key(halt: HaltRecord) -> str:
    """The canonical text of a halt's key (its sorted items as JSON)."""
    return json.dumps([list(item) for item in halt.key], separators=(",", ":"))


class PostgresActionStore:
    """An :class:`~faultlens_collector.actions.store.ActionStore` shared by every
    processor on the database of ``server`` (see the module docstring). Take it from
    :meth:`.database.PostgresDatabase.action_store`.

    ``alert_lease`` / ``job_lease`` (seconds) are how long a claimed alert or job stays
    this processor's before another may take it; ``max_audit_records`` bounds the
    audit trail (trimmed every 1000 insertions by this processor).
    """

    #: Other processors write the same tables: the engine follows :meth:`versions`.
    shared = True

    def __init__(
        self,
        server: PostgresServer,
        *,
        max_audit_records: int = 100_000,
        alert_lease: float = 30.0,
        job_lease: float = 60.0,
        holder: str | None = None,
    ) -> None:
        self._server = server
        self.max_audit_records = max_audit_records
        self.alert_lease = alert_lease
        self.job_lease = job_lease
        #: How this processor names itself in the leases it holds.
        self.holder = holder or holder_name()
        self._audit_inserts = 0
        server.migrate(COMPONENT, MIGRATIONS, what="action store")

    def close(self) -> None:
        """Give back the alerts and jobs this processor holds (another processor takes
        them at once instead of after their lease)."""
        try:
            self.release_alerts()
            self.release_jobs()
        except Exception:  # the database is gone: the leases run out on their own
            return

    def _write(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction; the rows it changed."""
        return self._server.run(
            lambda connection: changed_rows(connection, sql, parameters), "action store"
        )

    def _claim(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement that returns rows, in its own transaction; the rows."""
        return self._server.run(
            lambda connection: connection.execute(sql, parameters).fetchall(),
            "action store",
        )

    def _rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._server.connection("action store") as connection:
            return connection.execute(sql, parameters).fetchall()

    # fleet
    def versions(self) -> dict[str, int]:
        """A number per kind of shared state (:data:`TOPICS`) that grows whenever any
        processor changes it."""
        return {
            str(topic): int(version)
            for topic, version in self._rows("SELECT topic, version FROM faultlens_changes")
        }

    # audit
    def add_audit(self, record: AuditRecord) -> None:
        self._write(
            "INSERT INTO action_audit (id, started_at, hook, fingerprint, record) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
            "started_at = EXCLUDED.started_at, record = EXCLUDED.record",
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
            self._write(
                "DELETE FROM action_audit WHERE seq <= (SELECT max(seq) FROM action_audit) - %s",
                (self.max_audit_records,),
            )

    def audit_records(
        self, *, fingerprint: str | None = None, hook: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        where, parameters = audit_where("%s", fingerprint=fingerprint, hook=hook)
        rows = self._rows(
            f"SELECT record FROM action_audit {where} ORDER BY started_at DESC, seq DESC LIMIT %s",
            (*parameters, limit),
        )
        return [AuditRecord.from_json(json.loads(row[0])) for row in rows]

    def audit_records_by_group(
        self, fingerprints: Sequence[str], per_group: int
    ) -> dict[str, list[AuditRecord]]:
        """One query for all the groups (``= ANY`` of one array parameter): a window
        function numbers each group's records newest first (action_audit_by_group) and
        keeps the first ``per_group``."""
        found: dict[str, list[AuditRecord]] = {}
        if not fingerprints or per_group <= 0:
            return found
        rows = self._rows(
            "SELECT fingerprint, record FROM ("
            " SELECT fingerprint, record, started_at, seq, ROW_NUMBER() OVER ("
            "  PARTITION BY fingerprint ORDER BY started_at DESC, seq DESC) AS n"
            " FROM action_audit WHERE fingerprint = ANY(%s)"
            ") numbered WHERE n <= %s ORDER BY fingerprint, started_at DESC, seq DESC",
            (sorted(set(fingerprints)), per_group),
        )
        for fingerprint, text in rows:
            found.setdefault(fingerprint, []).append(AuditRecord.from_json(json.loads(text)))
        return found

    # halts
    def save_halt(self, halt: HaltRecord) -> None:
        self._write(
            "INSERT INTO action_halts (id, since, active, rule, halt_key, record) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
            "since = EXCLUDED.since, active = EXCLUDED.active, record = EXCLUDED.record",
            (halt.id, halt.since, halt.active, halt.rule, halt_key(halt), dumps(halt.as_json())),
        )

    def start_halt(self, halt: HaltRecord) -> HaltRecord:
        """Save ``halt`` unless a halt of the same rule holds the same key; the halt in
        force (``halt`` itself when it was saved)."""

        def work(connection: psycopg.Connection[Any]) -> HaltRecord:
            inserted = connection.execute(
                "INSERT INTO action_halts (id, since, active, rule, halt_key, record) "
                "VALUES (%s, %s, true, %s, %s, %s) "
                "ON CONFLICT (rule, halt_key) WHERE active DO NOTHING RETURNING id",
                (halt.id, halt.since, halt.rule, halt_key(halt), dumps(halt.as_json())),
            ).fetchone()
            if inserted is not None:
                return halt
            row = connection.execute(
                "SELECT record FROM action_halts WHERE rule = %s AND halt_key = %s AND active",
                (halt.rule, halt_key(halt)),
            ).fetchone()
            if row is None:
                raise Retry  # resumed in between: try again
            return HaltRecord.from_json(json.loads(row[0]))

        return self._server.run(work, "action store")

    def active_halts(self) -> list[HaltRecord]:
        rows = self._rows("SELECT record FROM action_halts WHERE active ORDER BY since")
        return [HaltRecord.from_json(json.loads(row[0])) for row in rows]

    def halt_history(self, limit: int = 100) -> list[HaltRecord]:
        rows = self._rows("SELECT record FROM action_halts ORDER BY since DESC LIMIT %s", (limit,))
        return [HaltRecord.from_json(json.loads(row[0])) for row in rows]

    # alert outbox
    def add_alert(self, alert: Alert) -> bool:
        return (
            self._write(
                "INSERT INTO action_outbox (alert_id, created_at, alert) VALUES (%s, %s, %s) "
                "ON CONFLICT (alert_id) DO NOTHING",
                (alert.id, alert.created_at, dumps(alert.as_json())),
            )
            == 1
        )

    def pending_alerts(self, limit: int) -> list[StoredAlert]:
        """Claim up to ``limit`` unsent alerts that no other processor holds (this
        processor's own unsent ones included), oldest first, for ``alert_lease``."""
        rows = self._claim(
            f"UPDATE action_outbox SET leased_by = %s, lease_until = {_NOW} + %s "
            "WHERE seq IN (SELECT seq FROM action_outbox WHERE sent_at IS NULL "
            f"AND (held_until IS NULL OR held_until <= {_NOW}) "
            f"AND (lease_until IS NULL OR lease_until < {_NOW} OR leased_by = %s) "
            "ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING seq, alert",
            (self.holder, self.alert_lease, self.holder, limit),
        )
        return sorted(
            (StoredAlert(int(seq), Alert.from_json(json.loads(text))) for seq, text in rows),
            key=lambda stored: stored.seq,
        )

    def mark_alerts_sent(self, seqs: Sequence[int], sent_at: float) -> None:
        self._write(
            "UPDATE action_outbox SET sent_at = %s, leased_by = NULL, lease_until = NULL "
            "WHERE seq = ANY(%s)",
            (sent_at, list(seqs)),
        )

    def prune_sent_alerts(self, before: float) -> int:
        return self._write(
            "DELETE FROM action_outbox WHERE sent_at IS NOT NULL AND sent_at < %s", (before,)
        )

    def hold_alert(self, alert: Alert, until: float) -> bool:
        return (
            self._write(
                "INSERT INTO action_outbox (alert_id, created_at, alert, held_until) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (alert_id) DO NOTHING",
                (alert.id, alert.created_at, dumps(alert.as_json()), until),
            )
            == 1
        )

    def settle_held_alert(self, alert_id: str, *, send: bool) -> bool:
        sql = "UPDATE action_outbox SET held_until = NULL" if send else "DELETE FROM action_outbox"
        return (
            self._write(f"{sql} WHERE alert_id = %s AND held_until IS NOT NULL", (alert_id,)) == 1
        )

    def release_held_alerts(self) -> int:
        """Nothing at start: other processors of the fleet hold alerts too; a held alert
        of a processor that died comes due at its time."""
        return 0

    def release_alerts(self) -> None:
        """Give back the unsent alerts this processor holds."""
        self._write(
            "UPDATE action_outbox SET leased_by = NULL, lease_until = NULL "
            "WHERE leased_by = %s AND sent_at IS NULL",
            (self.holder,),
        )

    # hook state
    def set_cooldown(self, hook: str, fingerprint: str, until: float) -> None:
        self._write(
            "INSERT INTO action_cooldowns (hook, fingerprint, until) VALUES (%s, %s, %s) "
            "ON CONFLICT (hook, fingerprint) DO UPDATE SET until = EXCLUDED.until",
            (hook, fingerprint, until),
        )

    def claim_cooldown(
        self, hook: str, fingerprint: str, until: float, *, now: float, job_id: str
    ) -> bool:
        """Start the cooldown of (``hook``, group) until ``until`` unless one runs at
        ``now`` for another job; True when job ``job_id`` may run (the first claim of a
        cooldown in the fleet, or the same job again after a crash)."""
        return bool(
            self._claim(
                "INSERT INTO action_cooldowns (hook, fingerprint, until, job_id) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (hook, fingerprint) DO UPDATE SET "
                "until = EXCLUDED.until, job_id = EXCLUDED.job_id "
                "WHERE action_cooldowns.until <= %s OR action_cooldowns.job_id = EXCLUDED.job_id "
                "RETURNING 1",
                (hook, fingerprint, until, job_id, now),
            )
        )

    def cooldowns(self, now: float) -> dict[tuple[str, str], float]:
        rows = self._rows(
            "SELECT hook, fingerprint, until FROM action_cooldowns WHERE until > %s", (now,)
        )
        return {(hook, fingerprint): float(until) for hook, fingerprint, until in rows}

    def prune_cooldowns(self, now: float) -> int:
        return self._write("DELETE FROM action_cooldowns WHERE until <= %s", (now,))

    def save_fix(self, fix: FixRecord) -> None:
        self._write(
            "INSERT INTO action_fixes (id, hook, result, decided_at, record) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
            "result = EXCLUDED.result, decided_at = EXCLUDED.decided_at, "
            "record = EXCLUDED.record",
            (fix.id, fix.hook, fix.result, fix.decided_at, dumps(fix.as_json())),
        )

    def pending_fixes(self) -> list[FixRecord]:
        rows = self._rows("SELECT record FROM action_fixes WHERE result = 'pending'")
        return [FixRecord.from_json(json.loads(row[0])) for row in rows]

    def fixes_by_id(self, ids: Sequence[str]) -> dict[str, FixRecord]:
        if not ids:
            return {}
        rows = self._rows("SELECT record FROM action_fixes WHERE id = ANY(%s)", (sorted(set(ids)),))
        fixes = (FixRecord.from_json(json.loads(text)) for (text,) in rows)
        return {fix.id: fix for fix in fixes}

    def decided_fixes(self, hook: str, limit: int) -> list[FixRecord]:
        rows = self._rows(
            "SELECT record FROM action_fixes WHERE hook = %s AND result != 'pending' "
            "ORDER BY decided_at DESC LIMIT %s",
            (hook, limit),
        )
        return [FixRecord.from_json(json.loads(row[0])) for row in rows]

    def save_job(self, job: HookJob) -> None:
        """Queue ``job``, held by this processor for ``job_lease``."""
        self._write(
            "INSERT INTO action_jobs (id, created_at, leased_by, lease_until, job) "
            f"VALUES (%s, %s, %s, {_NOW} + %s, %s) ON CONFLICT (id) DO UPDATE SET "
            "job = EXCLUDED.job, leased_by = EXCLUDED.leased_by, "
            "lease_until = EXCLUDED.lease_until",
            (job.id, job.created_at, self.holder, self.job_lease, dumps(job.as_json())),
        )

    def delete_job(self, job_id: str) -> None:
        self._write("DELETE FROM action_jobs WHERE id = %s", (job_id,))

    def pending_jobs(self) -> list[HookJob]:
        """The jobs this processor holds and those whose holder stopped renewing them
        (claimed now), oldest first."""
        rows = self._claim(
            f"UPDATE action_jobs SET leased_by = %s, lease_until = {_NOW} + %s "
            "WHERE id IN (SELECT id FROM action_jobs WHERE leased_by = %s "
            f"OR lease_until < {_NOW} ORDER BY created_at FOR UPDATE SKIP LOCKED) "
            "RETURNING created_at, job",
            (self.holder, self.job_lease, self.holder),
        )
        return [HookJob.from_json(json.loads(text)) for _, text in sorted(rows)]

    def hold_jobs(self) -> None:
        """Renew the leases of the jobs this processor holds."""
        self._write(
            f"UPDATE action_jobs SET lease_until = {_NOW} + %s WHERE leased_by = %s",
            (self.job_lease, self.holder),
        )

    def release_jobs(self) -> None:
        """Give back the jobs this processor holds (others may take them at once)."""
        self._write(
            "UPDATE action_jobs SET leased_by = NULL, lease_until = 0 WHERE leased_by = %s",
            (self.holder,),
        )

    # conditions
    def conditions(self) -> set[str]:
        return {row[0] for row in self._rows("SELECT key FROM action_conditions")}

    def raise_condition(self, key: str, since: float) -> bool:
        return (
            self._write(
                "INSERT INTO action_conditions (key, since) VALUES (%s, %s) "
                "ON CONFLICT (key) DO NOTHING",
                (key, since),
            )
            == 1
        )

    def clear_conditions(self, keys: Iterable[str]) -> None:
        self._write("DELETE FROM action_conditions WHERE key = ANY(%s)", (list(keys),))
