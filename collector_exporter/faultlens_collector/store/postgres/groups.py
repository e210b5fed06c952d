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

**Groups this store wrote last** (the 2,048 most recent) stay in memory with the
``xmin`` their rows got from that write — which changes the moment any other
transaction writes the row. A batch whose groups are all in memory skips step 1: it
merges into the remembered groups and writes them back with ``UPDATE … WHERE xmin =
<the remembered one>`` checked by ``faultlens_expect`` (a serialization failure unless
every row was written), so a processor that alone writes its groups commits a batch in
one round trip. When another processor (or an operator) wrote one of them, nothing of
that attempt is kept, the transaction runs again the usual way, and the next
:data:`UNREAD_PAUSE` transactions read first. A row whose ``xmin`` changed is decoded
again; one that did not is merged without decoding. The rows stay the truth: a failed
transaction forgets the groups it took.

An operator's bulk change (:meth:`update_groups`) locks the rows it selects in
fingerprint order too, in the transaction that writes its :mod:`operator log <.oplog>`
entry.

Indexes are the primary key, the dismissal end time and the status: every other
column changes with each merge, and an index on it would make each ingest update
also an index insertion (the table's ``fillfactor`` leaves room for PostgreSQL's
heap-only updates). The control API's sorted pages are read with a scan and a
top-N sort.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from faultlens import semconv

from faultlens_collector.groups.model import (
    HOUR_NANOS,
    Change,
    Group,
    Occurrence,
    merge,
    new_group,
)
from faultlens_collector.groups.store import (
    AmbiguousFingerprint,
    GroupKey,
    GroupNotFound,
    GroupQuery,
    GroupUpdate,
    OperatorAction,
    SeriesQuery,
    SeriesResult,
)
from faultlens_collector.store.filters import GroupFilters
from faultlens_collector.store.postgres import oplog
from faultlens_collector.store.postgres.server import PostgresServer, Retry, changed_rows
from faultlens_collector.store.sqlite import history
from faultlens_collector.store.sqlite.groups import (
    _encode,
    _encode_dismissal,
    _encode_samples,
    _group,
    keyset,
    order_by,
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
            dismissed_until BIGINT,
            regressed_at BIGINT NOT NULL DEFAULT 0) WITH (fillfactor = 70)""",
        "CREATE INDEX failure_groups_regressed ON failure_groups (regressed_at) "
        "WHERE regressed_at > 0",
        # Occurrences over time (store/sqlite/history.py): added to in the ingest
        # transaction (commutative upserts: any number of processors count exactly).
        """CREATE TABLE group_hours (
            fingerprint TEXT NOT NULL,
            hour BIGINT NOT NULL,
            service TEXT NOT NULL,
            occurrences BIGINT NOT NULL,
            PRIMARY KEY (fingerprint, hour, service))""",
        "CREATE INDEX group_hours_by_hour ON group_hours (hour)",
        "CREATE INDEX failure_groups_dismissed_until ON failure_groups (dismissed_until) "
        "WHERE dismissed_until IS NOT NULL",
        "CREATE INDEX failure_groups_status ON failure_groups (status)",
        # An ingest transaction that expected to write n groups and wrote fewer (another
        # processor wrote one since) fails as a serialization failure: run again.
        """CREATE FUNCTION faultlens_expect(written bigint, expected bigint) RETURNS bigint
            LANGUAGE plpgsql AS $$
            BEGIN
                IF written <> expected THEN
                    RAISE EXCEPTION 'faultlens: % of % groups were written by another processor',
                        expected - written, expected USING ERRCODE = 'serialization_failure';
                END IF;
                RETURN written;
            END $$""",
        *oplog.TABLES,
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

#: The columns of a group in the order :func:`~.sqlite.groups._group` reads them (the
#: JSON columns as text, so one row decoder serves both backends).
_COLUMNS: Final = (
    "fingerprint, exception_type, message, stacktrace, category, severity, status, count, "
    "handled_count, first_seen, last_seen, service_counts::text, span_names, samples, "
    "category_locked, tags::text, severity_locked, dismissal, dismissed_until, regressed_at"
)
# The groups an ingest transaction touches, locked in fingerprint order, with the xid that
# wrote each last; the stack trace (never changed once stored) only of the groups not cached.
_SELECT_FOR_UPDATE: Final = (
    "SELECT xmin::text, "
    + _COLUMNS.replace(
        "stacktrace,",
        "CASE WHEN fingerprint = ANY(ARRAY(SELECT json_array_elements_text(%s::json))) "
        "THEN NULL ELSE stacktrace END,",
    )
    + " FROM failure_groups WHERE fingerprint = "
    "ANY(ARRAY(SELECT json_array_elements_text(%s::json))) ORDER BY fingerprint FOR UPDATE"
)
# Rows travel as one JSON document per statement (json.dumps is C; psycopg would build
# every array element by element in Python), read with json_to_recordset.
_MERGED: Final = (
    "c text, sv text, r int, st text, n bigint, h bigint, fs bigint, ls bigint, sc jsonb, "
    "sn text, sm text, d text, du bigint, ra bigint"
)
# New groups (every column), in fingerprint order.
_INSERT: Final = f"""INSERT INTO failure_groups (fingerprint, exception_type, message,
    stacktrace, category, severity, severity_rank, status, count, handled_count, first_seen,
    last_seen, service_counts, span_names, samples, dismissal, dismissed_until, regressed_at)
    SELECT f, t, m, s, c, sv, r, st, n, h, fs, ls, sc, sn, sm, d, du, coalesce(ra, 0)
    FROM json_to_recordset(%s::json) AS v(f text, t text, m text, s text, {_MERGED})
    ORDER BY f
    ON CONFLICT (fingerprint) DO NOTHING
    RETURNING fingerprint"""
# Known groups: what a merge can change.
_SET: Final = """category = v.c, severity = v.sv,
    severity_rank = v.r, status = v.st, count = v.n, handled_count = v.h, first_seen = v.fs,
    last_seen = v.ls, service_counts = v.sc, span_names = coalesce(v.sn, g.span_names),
    samples = coalesce(v.sm, g.samples),
    dismissal = CASE WHEN v.dk THEN v.d ELSE g.dismissal END,
    dismissed_until = CASE WHEN v.dk THEN v.du ELSE g.dismissed_until END,
    regressed_at = coalesce(v.ra, g.regressed_at)"""
_UPDATE: Final = f"""UPDATE failure_groups AS g SET {_SET}
    FROM json_to_recordset(%s::json) AS v(f text, dk boolean, {_MERGED})
    WHERE g.fingerprint = v.f"""
# Known groups merged from what this store wrote last, without reading them: each row is
# written only if its xmin is still the one this store's write gave it (a row another
# transaction wrote meanwhile is re-checked after that one ends), and unless all were, the
# transaction fails as a serialization failure and runs again the usual way.
_WRITE_UNREAD: Final = f"""WITH written AS (UPDATE failure_groups AS g SET {_SET}
    FROM json_to_recordset(%s::json) AS v(f text, x text, dk boolean, {_MERGED})
    WHERE g.fingerprint = v.f AND g.xmin = v.x::xid AND g.fingerprint IN (
        SELECT fingerprint FROM failure_groups
        WHERE fingerprint = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))
        ORDER BY fingerprint FOR UPDATE)
    RETURNING 1)
    SELECT faultlens_expect(count(*), %s) FROM written"""
# Hourly counts: (fingerprint, hour, service, occurrences) added, in key order.
_ADD_HOURS: Final = """INSERT INTO group_hours (fingerprint, hour, service, occurrences)
    SELECT f, h, s, n FROM json_to_recordset(%s::json) AS v(f text, h bigint, s text, n bigint)
    ORDER BY f, h, s
    ON CONFLICT (fingerprint, hour, service)
    DO UPDATE SET occurrences = group_hours.occurrences + EXCLUDED.occurrences"""
#: Ingest transactions that read their groups after one that did not read them failed.
UNREAD_PAUSE: Final = 64
#: A NUL character escaped in JSON text (not preceded by an escaping backslash).
_NUL: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
#: How long :attr:`PostgresGroupStore.group_count` trusts its last count (seconds).
COUNT_REFRESH_SECONDS: Final = 5.0


def _merged(group: Group, *, lists: bool = True, dismissal: bool = True) -> dict[str, Any]:
    """What :data:`_UPDATE` writes, keyed as its record set names it; the span names and
    samples only when ``lists`` (they grew), the dismissal only when ``dismissal`` (the
    group was or is dismissed): left out, they keep their stored values."""
    columns: dict[str, Any] = {
        "f": group.fingerprint,
        "c": group.category,
        "sv": group.severity,
        "r": semconv.SEVERITY_RANK.get(group.severity, -1),
        "st": group.status,
        "n": group.count,
        "h": group.handled_count,
        "fs": group.first_seen,
        "ls": group.last_seen,
        "sc": group.service_counts,
    }
    if lists:
        columns["sn"] = _encode(group.span_names)
        columns["sm"] = _encode_samples(group)
    if dismissal:
        columns["dk"] = True
        columns["d"], columns["du"] = _encode_dismissal(group)
    return columns


def _merge(
    group: Group,
    batch: Sequence[Occurrence],
    now: int,
    hours: list[dict[str, Any]],
    *,
    created: bool,
) -> tuple[Change, dict[str, Any]]:
    """Merge ``batch`` into ``group``: the change, and the columns to write; the hourly
    counts it adds are appended to ``hours``."""
    dismissed = group.dismissal is not None
    merged = merge(group, batch, now)
    if merged.regressed:
        group.regressed_at = now
    columns = _merged(
        group,
        lists=created or merged.lists_grew,
        dismissal=created or dismissed or group.dismissal is not None,
    )
    if merged.regressed:
        columns["ra"] = now
    hours += [
        {"f": group.fingerprint, "h": hour, "s": service, "n": added}
        for hour, service, added in history.hour_counts(merged, batch, group.service_counts, now)
    ]
    change = Change(
        group,
        merged.added,
        created,
        merged.regressed,
        merged.last or batch[-1],
        batch,
        merged.reopened,
    )
    return change, columns


def _add_hours(connection: psycopg.Connection[Any], hours: list[dict[str, Any]]) -> None:
    """Add the hourly counts of one ingest transaction (inside it)."""
    if hours:
        connection.execute(_ADD_HOURS, (rows_document(hours),))


def _xmin(row: Sequence[Any] | None) -> str:
    """The ``xmin`` a row written by the transaction whose ``pg_current_xact_id()`` is
    ``row[0]`` shows (the 64-bit id's low 32 bits)."""
    return "" if row is None else str(int(row[0]) % (1 << 32))


def _unchanged(cached: tuple[str, Group] | None, row: Sequence[Any]) -> Group:
    """The group of ``row`` (``xmin`` first, then :data:`_COLUMNS`): the cached one when
    nobody wrote the row since this store did (same ``xmin``), decoded otherwise."""
    if cached is not None:
        xmin, group = cached
        if xmin == row[0]:
            return group
        if row[4] is None:  # the stack trace was left out: it is the cached one
            return _group((*row[1:4], group.stacktrace, *row[5:]))
    return _group(row[1:])


def rows_document(rows: Sequence[dict[str, Any]]) -> str:
    """``rows`` as the JSON text of a statement's record set. PostgreSQL text cannot hold
    NUL characters: they become U+FFFD (a message or name that carries one is kept, not
    refused)."""
    document = _dumps(rows)
    if "\\u0000" in document:
        document = _NUL.sub(r"\1\\ufffd", document)
    return document


_dumps: Final = json.JSONEncoder(separators=(",", ":")).encode


class PostgresGroupStore:
    """Failure groups and the operator log in the PostgreSQL database of ``server``
    (tables created and migrated here; take it from
    :meth:`.database.PostgresDatabase.group_store`). ``redact`` cleans each group's
    message and stack trace before they are first stored."""

    def __init__(
        self,
        server: PostgresServer,
        *,
        redact: Callable[[str], str] = str,
        hot_groups: int = 2048,
    ) -> None:
        self._server = server
        self._redact = redact
        # The groups this store wrote last, with the xmin their rows got: merged again
        # without decoding while nobody else wrote them. Only apply() (one caller at a
        # time: the batch writer's leader) uses it.
        self._hot: dict[str, tuple[str, Group]] = {}
        self._hot_groups = hot_groups
        self._unread_tried = False
        self._unread_pause = 0
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
            hot = self._hot
            known = [fingerprint for fingerprint in fingerprints if fingerprint in hot]
            # Taken out for this attempt: a retry or a failure never sees half-merged groups.
            taken = {fingerprint: hot.pop(fingerprint) for fingerprint in known}
            if self._unread_tried:  # the attempt before, without reading, failed
                self._unread_tried = False
                self._unread_pause = UNREAD_PAUSE
            xid[0] = connection.execute("SELECT pg_current_xact_id()::text")
            if len(known) == len(fingerprints) and not self._unread_pause:
                self._unread_tried = True
                return self._write_unread(connection, by_fingerprint, taken, now)
            self._unread_pause = max(0, self._unread_pause - 1)
            return self._read_and_write(connection, by_fingerprint, known, taken, now)

        xid: list[Any] = [None]
        try:
            changes = self._server.run(work)
        finally:
            self._unread_tried = False
        # What this transaction wrote, as its rows' xmin will say until someone else writes.
        try:
            written = _xmin(xid[0].fetchone())
        except Exception:  # committed, its answer lost (resolved): decode them next time
            written = ""
        hot = self._hot
        for change in changes:
            hot[change.group.fingerprint] = (written, change.group)
        while len(hot) > self._hot_groups:
            del hot[next(iter(hot))]
        self._count += sum(change.created for change in changes)
        return changes

    def _read_and_write(
        self,
        connection: psycopg.Connection[Any],
        by_fingerprint: dict[str, list[Occurrence]],
        known: list[str],
        taken: dict[str, tuple[str, Group]],
        now: int,
    ) -> list[Change]:
        """Read and lock the groups (in fingerprint order), merge, insert the new ones and
        update the others (see the module docstring)."""
        rows = connection.execute(
            _SELECT_FOR_UPDATE, (_dumps(known), _dumps(sorted(by_fingerprint)))
        ).fetchall()
        found = {row[1]: row for row in rows}
        changes: list[Change] = []
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        hours: list[dict[str, Any]] = []
        for fingerprint, batch in by_fingerprint.items():
            row = found.get(fingerprint)
            if row is None:
                group = new_group(batch[0], self._redact)
            else:
                group = _unchanged(taken.get(fingerprint), row)
            change, columns = _merge(group, batch, now, hours, created=row is None)
            changes.append(change)
            if row is None:
                columns.update(t=group.exception_type, m=group.message, s=group.stacktrace)
                inserts.append(columns)
            else:
                updates.append(columns)
        inserted = None
        if inserts:
            inserted = connection.execute(_INSERT, (rows_document(inserts),))
        if updates:
            connection.execute(_UPDATE, (rows_document(updates),))
        if inserted is not None and len(inserted.fetchall()) < len(inserts):
            raise Retry  # another processor created one of them first: merge into it
        _add_hours(connection, hours)
        return changes

    @staticmethod
    def _write_unread(
        connection: psycopg.Connection[Any],
        by_fingerprint: dict[str, list[Occurrence]],
        taken: dict[str, tuple[str, Group]],
        now: int,
    ) -> list[Change]:
        """Merge into the groups as this store wrote them last and write them back on the
        condition that nobody else wrote them since (:data:`_WRITE_UNREAD`): one round trip
        with ``COMMIT``."""
        changes: list[Change] = []
        updates: list[dict[str, Any]] = []
        hours: list[dict[str, Any]] = []
        for fingerprint, batch in by_fingerprint.items():
            xmin, group = taken[fingerprint]
            change, columns = _merge(group, batch, now, hours, created=False)
            columns["x"] = xmin
            changes.append(change)
            updates.append(columns)
        fingerprints = _dumps(sorted(by_fingerprint))
        connection.execute(_WRITE_UNREAD, (rows_document(updates), fingerprints, len(updates)))
        _add_hours(connection, hours)
        return changes

    def probe(self) -> None:
        """Commit a transaction that is given a transaction id (and so writes a commit
        record to the WAL) and changes no row: whether the database can commit new data
        now. Raises :class:`~.server.StoreUnavailable` (or the server's error: a standby in
        recovery, a full disk) when it cannot."""
        self._server.run(lambda connection: None)

    def remove_groups(
        self, fingerprints: Sequence[str], action: OperatorAction
    ) -> tuple[int, OperatorAction]:
        """Delete the groups with these fingerprints — rows and mentions in the operator
        log — and log ``action`` (touching no group), in one transaction; how many groups
        were removed, and the logged action."""
        chosen = _dumps(list(fingerprints))

        def work(connection: psycopg.Connection[Any]) -> tuple[int, OperatorAction]:
            removed = changed_rows(
                connection,
                "DELETE FROM failure_groups WHERE fingerprint IN (SELECT fingerprint FROM "
                "failure_groups WHERE fingerprint = "
                "ANY(ARRAY(SELECT json_array_elements_text(%s::json))) "
                "ORDER BY fingerprint FOR UPDATE)",
                (chosen,),
            )
            connection.execute(
                "DELETE FROM operator_action_groups WHERE fingerprint = "
                "ANY(ARRAY(SELECT json_array_elements_text(%s::json)))",
                (chosen,),
            )
            return removed, oplog.insert(connection, action)

        for fingerprint in fingerprints:
            self._hot.pop(fingerprint, None)
        removed, logged = self._server.run(work)
        self._count -= removed
        return removed, logged

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

    # occurrences over time
    def series(self, query: SeriesQuery) -> SeriesResult:
        """Occurrences over time (see :func:`..sqlite.history.read_series`: the same
        table and query)."""
        where, parameters = _where(query.groups) if query.groups is not None else ("", [])
        with self._server.connection() as connection:
            return history.read_series(
                connection,
                query,
                where,
                parameters,
                mark="%s",
                members="= ANY(ARRAY(SELECT json_array_elements_text(%s::json)))",
            )

    def prune_hours(self, now_unix_nano: int | None = None) -> int:
        """Delete hourly counts older than the retention; how many rows."""
        now = time.time_ns() if now_unix_nano is None else now_unix_nano
        before = now // HOUR_NANOS - history.RETENTION_HOURS
        return self._server.run(
            lambda connection: changed_rows(
                connection, "DELETE FROM group_hours WHERE hour < %s", (before,)
            )
        )

    def action_fingerprints(self, action_id: int, limit: int) -> list[str]:
        """The groups an operator action touched, in fingerprint order (at most ``limit``)."""
        rows = self._rows(
            "SELECT fingerprint FROM operator_action_groups WHERE action_id = %s "
            "ORDER BY fingerprint LIMIT %s",
            (action_id, limit),
        )
        return [row[0] for row in rows]

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
        self,
        query: GroupQuery,
        *,
        limit: int,
        offset: int = 0,
        after: GroupKey | None = None,
        count: bool = True,
    ) -> tuple[list[Group], int]:
        """One page of groups matching ``query`` (after ``after``, past ``offset`` rows)
        and the number of all that match (-1 without ``count``); see
        :meth:`~faultlens_collector.groups.store.GroupStore.list_groups`."""
        where, parameters = _where(query)
        page_where, page_parameters = keyset(query, after, where, parameters, "%s")
        total = -1
        with self._server.connection() as connection:
            if count:
                row = connection.execute(
                    f"SELECT count(*) FROM failure_groups {where}", parameters
                ).fetchone()
                total = int(row[0]) if row else 0
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM failure_groups {page_where} {order_by(query)} "
                "LIMIT %s OFFSET %s",
                [*page_parameters, limit, offset],
            ).fetchall()
        return [_group(row) for row in rows], total

    def iter_groups(self, query: GroupQuery, *, chunk: int = 500) -> Iterator[Group]:
        """Every group matching ``query``, in order, read ``chunk`` rows at a time (a
        server-side cursor in one read-only transaction: a consistent snapshot)."""
        where, parameters = _where(query)
        with self._server.connection() as connection, connection.transaction():
            cursor = connection.cursor(name="faultlens_export")
            cursor.itersize = chunk
            cursor.execute(
                f"SELECT {_COLUMNS} FROM failure_groups {where} {order_by(query)}",
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


class _PostgresFilters(GroupFilters):
    """PostgreSQL's spelling: ``= ANY(%s)`` of one array, ``?|`` over the ``jsonb`` columns."""

    mark = "%s"

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(values)]

    def any_service(self, services: Sequence[str]) -> tuple[str, list[Any]]:
        return "service_counts ?| %s", [list(services)]

    def any_tag(self, tags: Sequence[str]) -> tuple[str, list[Any]]:
        return "tags ?| %s", [list(tags)]

    def fingerprint_in(self, fingerprints: Sequence[str]) -> tuple[str, list[Any]]:
        return "fingerprint = ANY(%s)", [list(fingerprints)]


_where = _PostgresFilters().where


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
