"""The failure-group store in PostgreSQL (:class:`PostgresGroupStore`), shared by any
number of processors.

It implements :class:`~faultlens_collector.groups.store.GroupStore`: what a group is
and how occurrences merge into it is the backend-neutral
:func:`~faultlens_collector.groups.model.merge`, run under the rows' locks.

**One ingest transaction** (:meth:`PostgresGroupStore.apply`, the occurrences of one
or more requests, two round trips in the usual case):

1. ``SELECT … WHERE fingerprint = ANY(…) ORDER BY fingerprint FOR UPDATE`` reads and
   locks the groups the batch touches, always in fingerprint order, so two
   processors writing overlapping batches queue on the first row they share instead
   of deadlocking, and every merge starts from the row as the previous writer —
   whichever processor it was — committed it: counts are exact.
2. The batch is merged in memory; new groups go in with one
   ``INSERT … SELECT FROM unnest(…) ORDER BY fingerprint ON CONFLICT DO NOTHING
   RETURNING fingerprint``, the known ones are written back with one
   ``UPDATE … FROM unnest(…)``, and ``COMMIT`` travels with them.

Two processors may both find a group missing and both try to create it: the unique
key lets one insert win, the other's ``INSERT`` waits for the winner's commit and
then inserts nothing for that key. The loser rolls its whole transaction back and
runs it again (:class:`~.server.Retry`); this time step 1 finds and locks the
winner's row and merges into it. So a group is created — and reported as
``created`` to the listeners, which alert — by exactly one transaction in the fleet.

Nothing is cached between transactions (another processor may have written any row
since); the rows are the truth. An operator's bulk change (:meth:`update_groups`)
locks the rows it selects in fingerprint order too, in the transaction that writes
its :mod:`operator log <.oplog>` entry.

Indexes are the primary key, the dismissal end time and the status: every other
column changes with each merge, and an index on it would make each ingest update
also an index insertion (the table's ``fillfactor`` leaves room for PostgreSQL's
heap-only updates). The control API's sorted pages are read with a scan and a
top-N sort.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from faultlens import semconv

from faultlens_collector.groups.model import Change, Group, Occurrence, merge, new_group
from faultlens_collector.groups.store import (
    AmbiguousFingerprint,
    GroupNotFound,
    GroupQuery,
    GroupUpdate,
    OperatorAction,
)
from faultlens_collector.store.postgres import oplog
from faultlens_collector.store.postgres.server import PostgresServer, Retry, changed_rows
from faultlens_collector.store.sqlite.groups import (
    _SORT_COLUMNS,
    _encode,
    _encode_dismissal,
    _encode_samples,
    _group,
    encode_counts,
)

if TYPE_CHECKING:
    import psycopg

COMPONENT: Final = "groups"
_log = logging.getLogger(__name__)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE failure_groups (
            fingerprint TEXT PRIMARY KEY,
            exception_type TEXT NOT NULL,
            message TEXT NOT NULL,
            stacktrace TEXT NOT NULL,
            category TEXT NOT NULL,
            severity TEXT NOT NULL,
            severity_rank INTEGER NOT NULL,
            status TEXT NOT NULL,
            count BIGINT NOT NULL,
            handled_count BIGINT NOT NULL,
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL,
            service_counts JSONB NOT NULL,
            span_names TEXT NOT NULL,
            samples TEXT NOT NULL,
            category_locked BOOLEAN NOT NULL DEFAULT false,
            tags JSONB NOT NULL DEFAULT '[]',
            severity_locked BOOLEAN NOT NULL DEFAULT false,
            dismissal TEXT,
            dismissed_until BIGINT) WITH (fillfactor = 70)""",
        "CREATE INDEX failure_groups_dismissed_until ON failure_groups (dismissed_until) "
        "WHERE dismissed_until IS NOT NULL",
        "CREATE INDEX failure_groups_status ON failure_groups (status)",
        *oplog.TABLES,
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

#: The columns of a group in the order :func:`~.sqlite.groups._group` reads them (the
#: JSON columns as text, so one row decoder serves both backends).
_COLUMNS: Final = (
    "fingerprint, exception_type, message, stacktrace, category, severity, status, count, "
    "handled_count, first_seen, last_seen, service_counts::text, span_names, samples, "
    "category_locked, tags::text, severity_locked, dismissal, dismissed_until"
)
_SELECT_FOR_UPDATE: Final = (
    f"SELECT {_COLUMNS} FROM failure_groups WHERE fingerprint = ANY(%s) "
    "ORDER BY fingerprint FOR UPDATE"
)
# New groups (every column), in fingerprint order.
_INSERT: Final = """INSERT INTO failure_groups (fingerprint, exception_type, message,
    stacktrace, category, severity, severity_rank, status, count, handled_count, first_seen,
    last_seen, service_counts, span_names, samples, dismissal, dismissed_until)
    SELECT f, t, m, s, c, sv, r, st, n, h, fs, ls, sc::jsonb, sn, sm, d, du
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
        %s::int4[], %s::text[], %s::int8[], %s::int8[], %s::int8[], %s::int8[], %s::text[],
        %s::text[], %s::text[], %s::text[], %s::int8[])
        AS v(f, t, m, s, c, sv, r, st, n, h, fs, ls, sc, sn, sm, d, du)
    ORDER BY f
    ON CONFLICT (fingerprint) DO NOTHING
    RETURNING fingerprint"""
# Known groups: what a merge can change.
_UPDATE: Final = """UPDATE failure_groups AS g SET category = v.c, severity = v.sv,
    severity_rank = v.r, status = v.st, count = v.n, handled_count = v.h, first_seen = v.fs,
    last_seen = v.ls, service_counts = v.sc::jsonb, span_names = v.sn, samples = v.sm,
    dismissal = v.d, dismissed_until = v.du
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::int4[], %s::text[], %s::int8[],
        %s::int8[], %s::int8[], %s::int8[], %s::text[], %s::text[], %s::text[], %s::text[],
        %s::int8[]) AS v(f, c, sv, r, st, n, h, fs, ls, sc, sn, sm, d, du)
    WHERE g.fingerprint = v.f"""
#: How long :attr:`PostgresGroupStore.group_count` trusts its last count (seconds).
COUNT_REFRESH_SECONDS: Final = 5.0


def _merged_columns(group: Group) -> tuple[Any, ...]:
    """What :data:`_UPDATE` writes (after the fingerprint)."""
    return (
        group.category,
        group.severity,
        semconv.SEVERITY_RANK.get(group.severity, -1),
        group.status,
        group.count,
        group.handled_count,
        group.first_seen,
        group.last_seen,
        encode_counts(group.service_counts),
        _encode(group.span_names),
        _encode_samples(group),
        *_encode_dismissal(group),
    )


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column (for ``unnest``)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


class PostgresGroupStore:
    """Failure groups and the operator log in the PostgreSQL database of ``server``
    (tables created and migrated here; take it from
    :meth:`.database.PostgresDatabase.group_store`). ``redact`` cleans each group's
    message and stack trace before they are first stored."""

    def __init__(self, server: PostgresServer, *, redact: Callable[[str], str] = str) -> None:
        self._server = server
        self._redact = redact
        server.migrate(COMPONENT, MIGRATIONS, what="failure store")
        self._count = 0
        self._counted_at = -COUNT_REFRESH_SECONDS
        self._count_groups_now()

    def _count_groups_now(self) -> None:
        with self._server.connection() as connection:
            row = connection.execute("SELECT count(*) FROM failure_groups").fetchone()
        self._count = int(row[0]) if row else 0
        self._counted_at = time.monotonic()

    @property
    def group_count(self) -> int:
        """Groups in the database, from every processor: counted again when the last
        count is older than :data:`COUNT_REFRESH_SECONDS` (the last count when the
        database cannot be reached)."""
        if time.monotonic() - self._counted_at >= COUNT_REFRESH_SECONDS:
            self._counted_at = time.monotonic()
            with contextlib.suppress(Exception):
                self._count_groups_now()
        return self._count

    def close(self) -> None:
        """Nothing to finish: every write is committed when it returns."""

    # ingest
    def apply(self, occurrences: Sequence[Occurrence]) -> list[Change]:
        """Merge ``occurrences`` into their groups in one transaction (see the module
        docstring); a :class:`Change` per group. Raises (and keeps nothing) when the
        transaction cannot commit."""
        by_fingerprint: dict[str, list[Occurrence]] = {}
        for occurrence in occurrences:
            by_fingerprint.setdefault(occurrence.fingerprint, []).append(occurrence)
        if not by_fingerprint:
            return []
        fingerprints = sorted(by_fingerprint)

        def work(connection: psycopg.Connection[Any]) -> list[Change]:
            now = time.time_ns()
            rows = connection.execute(_SELECT_FOR_UPDATE, (fingerprints,)).fetchall()
            found = {row[0]: row for row in rows}
            changes: list[Change] = []
            inserts: list[tuple[Any, ...]] = []
            updates: list[tuple[Any, ...]] = []
            for fingerprint, batch in by_fingerprint.items():
                row = found.get(fingerprint)
                group = new_group(batch[0], self._redact) if row is None else _group(row)
                merged = merge(group, batch, now)
                columns = _merged_columns(group)
                if row is None:
                    inserts.append(
                        (
                            fingerprint,
                            group.exception_type,
                            group.message,
                            group.stacktrace,
                            *columns,
                        )
                    )
                else:
                    updates.append((fingerprint, *columns))
                changes.append(
                    Change(
                        group,
                        merged.added,
                        row is None,
                        merged.regressed,
                        merged.last or batch[-1],
                        batch,
                        merged.reopened,
                    )
                )
            inserted = None
            if inserts:
                inserted = connection.execute(_INSERT, _columns(inserts, 17))
            if updates:
                connection.execute(_UPDATE, _columns(updates, 14))
            if inserted is not None and len(inserted.fetchall()) < len(inserts):
                raise Retry  # another processor created one of them first: merge into it
            return changes

        changes = self._server.run(work)
        self._count += sum(change.created for change in changes)
        return changes

    def expire_dismissals(self, now_unix_nano: int | None = None) -> int:
        """Reopen the dismissed groups whose dismissal's end time passed; how many."""
        now = time.time_ns() if now_unix_nano is None else now_unix_nano

        def work(connection: psycopg.Connection[Any]) -> int:
            return changed_rows(
                connection,
                "UPDATE failure_groups SET status = 'open', dismissal = NULL, "
                "dismissed_until = NULL WHERE fingerprint IN (SELECT fingerprint FROM "
                "failure_groups WHERE dismissed_until IS NOT NULL AND dismissed_until <= %s "
                "AND status = 'dismissed' ORDER BY fingerprint FOR UPDATE)",
                (now,),
            )

        return self._server.run(work)

    # operators
    def update_groups(
        self, query: GroupQuery, update: GroupUpdate, action: OperatorAction
    ) -> OperatorAction:
        """Apply ``update`` to every group ``query`` selects and log ``action`` with the
        groups it touched, in one transaction (the rows locked in fingerprint order);
        the logged action. An update that changes nothing only logs."""
        items, values = _assignments(update)
        where, parameters = _where(query)

        def work(connection: psycopg.Connection[Any]) -> OperatorAction:
            logged = oplog.attach_groups(
                connection, oplog.insert(connection, action), where, parameters
            )
            if items and logged.count:
                connection.execute(
                    f"UPDATE failure_groups SET {', '.join(items)} WHERE fingerprint IN "
                    "(SELECT fingerprint FROM operator_action_groups WHERE action_id = %s)",
                    [*values, logged.id],
                )
            return logged

        return self._server.run(work)

    def log_action(self, action: OperatorAction) -> OperatorAction:
        """Log an operator action that touched no group (a halt, a resume)."""
        return self._server.run(lambda connection: oplog.insert(connection, action))

    def set_action_count(self, action: OperatorAction, count: int) -> OperatorAction:
        """Correct how many things a logged action touched."""
        return self._server.run(lambda connection: oplog.set_count(connection, action, count))

    def operator_actions(
        self, *, limit: int = 100, fingerprint: str | None = None, action: str | None = None
    ) -> list[OperatorAction]:
        """Logged operator actions of the whole fleet, newest first."""
        with self._server.connection() as connection:
            return oplog.select(connection, limit=limit, fingerprint=fingerprint, action=action)

    # reads
    def _rows(self, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._server.connection() as connection:
            return connection.execute(sql, parameters).fetchall()

    def count_groups(self, query: GroupQuery) -> int:
        """How many groups ``query`` selects."""
        where, parameters = _where(query)
        ((total,),) = self._rows(f"SELECT count(*) FROM failure_groups {where}", parameters)
        return int(total)

    def missing(self, fingerprints: Sequence[str]) -> list[str]:
        """Those of ``fingerprints`` that name no group (in the order given)."""
        present = {
            row[0]
            for row in self._rows(
                "SELECT fingerprint FROM failure_groups WHERE fingerprint = ANY(%s)",
                (list(fingerprints),),
            )
        }
        return [fingerprint for fingerprint in fingerprints if fingerprint not in present]

    def list_groups(
        self, query: GroupQuery, *, limit: int, offset: int = 0
    ) -> tuple[list[Group], int]:
        """One page of groups matching ``query`` and the number of all that match."""
        where, parameters = _where(query)
        with self._server.connection() as connection:
            row = connection.execute(
                f"SELECT count(*) FROM failure_groups {where}",
                parameters,
            ).fetchone()
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM failure_groups {where} {_order(query)} LIMIT %s OFFSET %s",
                [*parameters, limit, offset],
            ).fetchall()
        return [_group(row) for row in rows], int(row[0]) if row else 0

    def iter_groups(self, query: GroupQuery, *, chunk: int = 500) -> Iterator[Group]:
        """Every group matching ``query``, in order, read ``chunk`` rows at a time (a
        server-side cursor in one read-only transaction: a consistent snapshot)."""
        where, parameters = _where(query)
        with self._server.connection() as connection, connection.transaction():
            cursor = connection.cursor(name="faultlens_export")
            cursor.itersize = chunk
            cursor.execute(
                f"SELECT {_COLUMNS} FROM failure_groups {where} {_order(query)}",
                parameters,
            )
            for row in cursor:
                yield _group(row)

    def get_group(self, fingerprint: str) -> Group:
        """The group with this fingerprint, or the only one whose fingerprint starts
        with it. Raises :class:`GroupNotFound` or :class:`AmbiguousFingerprint`."""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM failure_groups WHERE fingerprint >= %s "
            "AND fingerprint < %s ORDER BY fingerprint LIMIT 2",
            (fingerprint, fingerprint + "\uffff"),
        )
        exact = [row for row in rows if row[0] == fingerprint]
        if exact:
            return _group(exact[0])
        if not rows:
            raise GroupNotFound(f"no failure group has fingerprint {fingerprint!r}")
        if len(rows) > 1:
            raise AmbiguousFingerprint(
                f"{fingerprint!r} names more than one failure group; give more characters"
            )
        return _group(rows[0])


def _where(query: GroupQuery) -> tuple[str, list[Any]]:
    """The SQL ``WHERE`` clause (possibly empty) and its parameters."""
    clauses: list[str] = []
    parameters: list[Any] = []
    for column, values in (
        ("status", query.statuses),
        ("category", query.categories),
        ("severity", query.severities),
    ):
        if values:
            clauses.append(f"{column} = ANY(%s)")
            parameters.append(list(values))
    if query.services:
        clauses.append("service_counts ?| %s")
        parameters.append(list(query.services))
    if query.since_unix_nano:
        clauses.append("last_seen >= %s")
        parameters.append(query.since_unix_nano)
    if query.tags:
        clauses.append("tags ?| %s")
        parameters.append(list(query.tags))
    if query.fingerprints is not None:
        clauses.append("fingerprint = ANY(%s)")
        parameters.append(list(query.fingerprints))
    if query.action_id:
        clauses.append(
            "fingerprint IN (SELECT fingerprint FROM operator_action_groups WHERE action_id = %s)"
        )
        parameters.append(query.action_id)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), parameters


def _order(query: GroupQuery) -> str:
    """The SQL ``ORDER BY`` clause; ties are broken by fingerprint (``severity``: by
    severity, then by ``last_seen``)."""
    columns = _SORT_COLUMNS[query.sort]
    direction = "ASC" if query.ascending else "DESC"
    return "ORDER BY " + ", ".join(f"{column} {direction}" for column in (*columns, "fingerprint"))


def _assignments(update: GroupUpdate) -> tuple[list[str], list[Any]]:
    """SQL ``SET`` items and their parameters."""
    items: list[str] = []
    parameters: list[Any] = []
    if update.status is not None:
        dismissal = update.dismissal if update.status == "dismissed" else None
        items += ["status = %s", "dismissal = %s", "dismissed_until = %s"]
        parameters += [
            update.status,
            None if dismissal is None else _encode(dismissal.as_json()),
            dismissal.until if dismissal is not None and dismissal.until else None,
        ]
    if update.category is not None:
        items += ["category = %s", "category_locked = true"]
        parameters.append(update.category)
    if update.severity is not None:
        items += ["severity = %s", "severity_rank = %s", "severity_locked = true"]
        parameters += [update.severity, semconv.SEVERITY_RANK.get(update.severity, -1)]
    if update.add_tags or update.remove_tags:
        items.append(
            "tags = (SELECT coalesce(jsonb_agg(tag ORDER BY tag), '[]'::jsonb) FROM ("
            "SELECT tag FROM jsonb_array_elements_text(tags) AS old(tag) "
            "WHERE NOT tag = ANY(%s::text[]) UNION SELECT unnest(%s::text[])) AS new(tag))"
        )
        parameters += [list(update.remove_tags), list(update.add_tags)]
    return items, parameters
