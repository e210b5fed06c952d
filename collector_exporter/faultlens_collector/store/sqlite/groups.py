"""The failure-group store in SQLite (:class:`SQLiteGroupStore`), written in batches.

It implements :class:`~faultlens_collector.groups.store.GroupStore` over one
:class:`~.connection.SQLiteFile`: it writes through the file's writer connection under
the file's lock (shared with the action store) and reads through short-lived
read-only connections, so the control API never waits for ingest and vice versa
(WAL). :meth:`SQLiteGroupStore.apply` merges the occurrences of one or more requests
into their groups in a single transaction and returns what changed; nothing is
acknowledged to a client before that transaction committed (see
:mod:`.connection` for what "committed" survives).

Operators change groups in bulk with :meth:`SQLiteGroupStore.update_groups` (status,
dismissal, category, severity, tags): one ``UPDATE`` over the selected rows, in
the transaction that also writes the :mod:`operator log <.oplog>` entry and the list
of groups it touched.

A write to a known group appends its new counts to ``group_log`` instead of
updating its row (whose five indexes make an ``UPDATE`` three times the cost of
an append); the log is folded into ``failure_groups`` — the latest entry per
group wins — before the first ingest write after it reached :data:`FOLD_AFTER_ROWS`
entries, before any other write, and before any read, so readers see every
acknowledged count (unless the writer is stuck for longer than
:data:`READ_WAIT_SECONDS` or the disk is full: reads never wait for it, and then
show the counts of the last fold). A store opened after a crash folds what the log
holds on first use. An ingest write that is a single statement (new counts of known
groups, the usual case) runs without ``BEGIN`` and ``COMMIT``: SQLite makes one
statement atomic, and each of those calls would make the writer give up Python's
GIL and wait for it again.

Memory does not depend on the number of groups: only the groups written most
recently (``hot_groups``) and the fingerprints with unfolded log entries (at most
:data:`FOLD_AFTER_ROWS` plus one write's groups) are kept in memory, and SQLite's
page cache is bounded (the file's ``cache_kib``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from faultlens import semconv

from faultlens_collector.groups.model import (
    HOUR_NANOS,
    Change,
    Dismissal,
    Group,
    Occurrence,
    Sample,
    merge,
    new_group,
)
from faultlens_collector.groups.store import (
    SORT_COLUMNS,
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
from faultlens_collector.store.sqlite import history, oplog
from faultlens_collector.store.sqlite.connection import SQLiteFile, transaction

COMPONENT: Final = "groups"
#: ``group_log`` entries after which :meth:`SQLiteGroupStore.apply` folds the log.
FOLD_AFTER_ROWS: Final = 10_000
#: Longest a read waits for a write in progress to fold the log first (seconds).
READ_WAIT_SECONDS: Final = 0.25
#: Bytes :meth:`GroupStore.probe` writes (and deletes): room for a few new groups.
PROBE_BYTES: Final = 64 * 1024
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
            count INTEGER NOT NULL,
            handled_count INTEGER NOT NULL,
            first_seen INTEGER NOT NULL,
            last_seen INTEGER NOT NULL,
            service_counts TEXT NOT NULL,
            span_names TEXT NOT NULL,
            samples TEXT NOT NULL,
            category_locked INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX failure_groups_last_seen ON failure_groups (last_seen)",
        "CREATE INDEX failure_groups_first_seen ON failure_groups (first_seen)",
        "CREATE INDEX failure_groups_count ON failure_groups (count)",
        "CREATE INDEX failure_groups_severity ON failure_groups (severity_rank, last_seen)",
    ),
    (
        # Operator triage: tags, a severity an operator set, dismissals that lapse.
        "ALTER TABLE failure_groups ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE failure_groups ADD COLUMN severity_locked INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE failure_groups ADD COLUMN dismissal TEXT",
        "ALTER TABLE failure_groups ADD COLUMN dismissed_until INTEGER",
        "CREATE INDEX failure_groups_dismissed_until ON failure_groups (dismissed_until) "
        "WHERE dismissed_until IS NOT NULL",
        "CREATE INDEX failure_groups_status ON failure_groups (status, last_seen)",
        *oplog.TABLES,
    ),
    (
        # The count columns of known groups, appended per write and folded into
        # failure_groups in bulk (SQLiteGroupStore._fold): an append costs a third of an UPDATE
        # that maintains five indexes. Columns in the order of _count_columns.
        """CREATE TABLE group_log (
            id INTEGER PRIMARY KEY,
            category TEXT NOT NULL,
            severity TEXT NOT NULL,
            severity_rank INTEGER NOT NULL,
            status TEXT NOT NULL,
            count INTEGER NOT NULL,
            handled_count INTEGER NOT NULL,
            first_seen INTEGER NOT NULL,
            last_seen INTEGER NOT NULL,
            service_counts TEXT NOT NULL,
            fingerprint TEXT NOT NULL)""",
    ),
    (
        # GroupStore.probe: a write that needs fresh pages, deleted in the same commit.
        "CREATE TABLE store_probe (payload BLOB NOT NULL)",
    ),
    (
        # Occurrences over time (history.py) and when a group last regressed.
        *history.TABLES,
        "ALTER TABLE failure_groups ADD COLUMN regressed_at INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX failure_groups_regressed ON failure_groups (regressed_at) "
        "WHERE regressed_at > 0",
    ),
    (
        # Keyset pages (list_groups' after): each sort's index ends with the fingerprint,
        # the tiebreaker, so a page after (value..., fingerprint) is one range of the index.
        *(
            f"DROP INDEX failure_groups_{name}"
            for name in ("last_seen", "first_seen", "count", "severity", "status")
        ),
        "CREATE INDEX failure_groups_last_seen ON failure_groups (last_seen, fingerprint)",
        "CREATE INDEX failure_groups_first_seen ON failure_groups (first_seen, fingerprint)",
        "CREATE INDEX failure_groups_count ON failure_groups (count, fingerprint)",
        "CREATE INDEX failure_groups_severity ON failure_groups "
        "(severity_rank, last_seen, fingerprint)",
        "CREATE INDEX failure_groups_status ON failure_groups (status, last_seen, fingerprint)",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_COLUMNS: Final = (
    "fingerprint, exception_type, message, stacktrace, category, severity, status, count, "
    "handled_count, first_seen, last_seen, service_counts, span_names, samples, category_locked, "
    "tags, severity_locked, dismissal, dismissed_until, regressed_at"
)
_STORED_COLUMNS: Final = (
    "fingerprint, exception_type, message, stacktrace, category, severity, severity_rank, "
    "status, count, handled_count, first_seen, last_seen, service_counts, span_names, samples, "
    "category_locked, tags, severity_locked, dismissal, dismissed_until, regressed_at"
)


class SQLiteGroupStore:
    """Failure groups and the operator log in ``file`` (tables created and migrated
    here; take it from :meth:`.database.SQLiteDatabase.group_store`).

    The ``hot_groups`` groups written most recently stay in memory so that a
    failure storm merges without reading its group back; the rows stay the
    truth (a failed transaction empties that cache).

    ``redact`` is applied to each group's representative message and stack
    trace before they are first stored. Raises
    :class:`~faultlens_collector.store.errors.SchemaError` when the file cannot be
    used.
    """

    def __init__(
        self,
        file: SQLiteFile,
        *,
        redact: Callable[[str], str] = str,
        hot_groups: int = 2048,
    ) -> None:
        self.path = file.path
        self._file = file
        self._redact = redact
        self._lock = file.lock
        # The groups written last, in write order (oldest first): merged again without a
        # read. Only apply() fills it; every other write drops what it touches.
        self._hot: dict[str, Group] = {}
        self._hot_groups = hot_groups
        # Fingerprints with entries in group_log, and how many entries; None: not known
        # (a store just opened, or a transaction failed) — fold before relying on rows.
        self._logged: set[str] | None = None
        self._log_rows = 0
        file.migrate(COMPONENT, MIGRATIONS, what="failure store")
        self._db = file.connection()
        with self._lock:
            (self._group_count,) = self._db.execute(
                "SELECT COUNT(*) FROM failure_groups"
            ).fetchone()

    @property
    def connection(self) -> sqlite3.Connection:
        """The file's writer connection (tests use it to make the disk fail)."""
        return self._db

    @property
    def group_count(self) -> int:
        """Groups in the store (kept current by :meth:`apply`, not re-counted)."""
        return int(self._group_count)

    def close(self) -> None:
        """Fold the log (when the store can still write); the database closes the
        connection."""
        self._fold_before_read()

    def apply(  # noqa: PLR0915 -- one transaction per call: the ingest hot path
        self, occurrences: Sequence[Occurrence]
    ) -> list[Change]:
        """Merge ``occurrences`` into their groups in one transaction; a :class:`Change` per group.

        Raises ``sqlite3.Error`` (and changes nothing) when the transaction cannot commit.
        """
        by_fingerprint: dict[str, list[Occurrence]] = {}
        for occurrence in occurrences:
            by_fingerprint.setdefault(occurrence.fingerprint, []).append(occurrence)
        if not by_fingerprint:
            return []
        changes: list[Change] = []
        with self._lock:
            created = 0
            hot = self._hot
            now = time.time_ns()
            logged: list[tuple[Any, ...]] = []
            new_hours: list[tuple[str, int, str, int]] = []
            writes: list[tuple[str, Sequence[Any]]] = []
            try:
                if self._logged is None or self._log_rows >= FOLD_AFTER_ROWS:
                    self._fold_alone()
                for fingerprint, batch in by_fingerprint.items():
                    group = hot.pop(fingerprint, None)
                    is_new = False
                    if group is None:
                        if fingerprint in self._logged:  # type: ignore[operator]
                            self._fold_alone()  # its row lags behind the log
                        row = self._db.execute(
                            f"SELECT {_COLUMNS} FROM failure_groups WHERE fingerprint = ?",
                            (fingerprint,),
                        ).fetchone()
                        is_new = row is None
                        group = new_group(batch[0], self._redact) if is_new else _group(row)
                    dismissed = group.dismissal is not None
                    merged = merge(group, batch, now)
                    hours = history.hour_counts(merged, batch, group.service_counts, now)
                    if is_new:
                        writes.append((_INSERT, _row(group)))
                        new_hours += [(fingerprint, *hour) for hour in hours]
                    else:
                        if dismissed:  # its rate window moved, or it lapsed
                            writes.append((_UPDATE_DISMISSAL, _dismissal_columns(group)))
                        if merged.lists_grew:
                            writes.append((_UPDATE_LISTS, _list_columns(group)))
                        if merged.regressed:
                            group.regressed_at = now
                            writes.append((_UPDATE_REGRESSED, (now, fingerprint)))
                        counts = _count_columns(group)
                        logged += [(*counts, *hour) for hour in hours]
                    hot[fingerprint] = group
                    created += is_new
                    changes.append(
                        Change(
                            group,
                            merged.added,
                            is_new,
                            merged.regressed,
                            merged.last or batch[-1],
                            batch,
                            merged.reopened,
                        )
                    )
                writes.extend(_log_appends(logged))
                writes.extend(history.upserts(new_hours))
                _write_atomically(self._db, writes)
            except BaseException:
                hot.clear()  # merged in memory, not committed: the rows are the truth
                self._logged = None
                raise
            self._logged.update(columns[_LOG_FINGERPRINT] for columns in logged)  # type: ignore[union-attr]
            self._log_rows += len(logged)
            while len(hot) > self._hot_groups:
                del hot[next(iter(hot))]
            self._group_count += created
        return changes

    def probe(self) -> None:
        """Commit a transaction that writes :data:`PROBE_BYTES` (and deletes them again):
        whether the store can commit new data now. Raises ``sqlite3.Error`` when it
        cannot (a full disk, a read-only file); leaves nothing behind."""
        with self._lock, transaction(self._db):
            self._db.execute(
                "INSERT INTO store_probe (payload) VALUES (zeroblob(?))", (PROBE_BYTES,)
            )
            self._db.execute("DELETE FROM store_probe")

    def _fold_alone(self) -> None:
        """:meth:`_fold` in a transaction of its own (the caller holds the lock)."""
        with transaction(self._db):
            self._fold()

    def _fold(self) -> None:
        """Write the latest ``group_log`` entry of each group into its row and empty the
        log (inside the caller's transaction; the caller holds the lock)."""
        latest = self._db.execute(_LATEST_LOGGED_COUNTS).fetchall()
        if latest:
            self._db.executemany(_UPDATE_COUNTS, latest)
            self._db.execute(history.FOLD_HOURS)
            self._db.execute("DELETE FROM group_log")
        self._logged = set()
        self._log_rows = 0

    def _fold_before_write(self) -> None:
        """Fold the log inside the caller's transaction unless it is known to be empty."""
        if self._logged is None or self._log_rows:
            try:
                self._fold()
            except BaseException:
                self._logged = None
                raise

    def _fold_before_read(self) -> None:
        """Fold the log so readers see every acknowledged count. A read never waits long
        for the writer: when a write holds the store longer than
        :data:`READ_WAIT_SECONDS`, or the store cannot write (a full disk), the read
        sees the counts of the last fold."""
        if self._logged is not None and not self._log_rows:
            return
        if not self._lock.acquire(timeout=READ_WAIT_SECONDS):
            return
        try:
            with transaction(self._db):
                self._fold_before_write()
        except sqlite3.Error as exc:
            self._logged = None
            _log.warning("faultlens: reading groups without their latest counts: %s", exc)
        finally:
            self._lock.release()

    def _forget(self, fingerprints: Iterable[str] | None = None) -> None:
        """Drop cached groups (all when None). Every write besides :meth:`apply` calls this."""
        if fingerprints is None:
            self._hot.clear()
        else:
            for fingerprint in fingerprints:
                self._hot.pop(fingerprint, None)

    def update_groups(
        self, query: GroupQuery, update: GroupUpdate, action: OperatorAction
    ) -> OperatorAction:
        """Apply ``update`` to every group ``query`` selects and log ``action`` with the
        groups it touched, in one transaction; the logged action (its ``count`` is the
        number of groups). An update that changes nothing only logs."""
        items, values = _assignments(update)
        where, parameters = _where(query)
        with self._lock, transaction(self._db):
            self._fold_before_write()
            self._forget()
            logged = oplog.attach_groups(
                self._db, oplog.insert(self._db, action), where, parameters
            )
            if items and logged.count:
                self._db.execute(
                    f"UPDATE failure_groups SET {', '.join(items)} WHERE fingerprint IN "
                    "(SELECT fingerprint FROM operator_action_groups WHERE action_id = ?)",
                    [*values, logged.id],
                )
        return logged

    def remove_groups(
        self, fingerprints: Sequence[str], action: OperatorAction
    ) -> tuple[int, OperatorAction]:
        """Delete the groups with these fingerprints — rows, unfolded counts, mentions in
        the operator log — and log ``action`` (touching no group), in one transaction;
        how many groups were removed, and the logged action."""
        chosen = json.dumps(list(fingerprints))
        with self._lock, transaction(self._db):
            self._fold_before_write()
            self._forget(fingerprints)
            removed = int(
                self._db.execute(
                    "DELETE FROM failure_groups WHERE fingerprint IN "
                    "(SELECT value FROM json_each(?))",
                    (chosen,),
                ).rowcount
            )
            self._db.execute(
                "DELETE FROM operator_action_groups WHERE fingerprint IN "
                "(SELECT value FROM json_each(?))",
                (chosen,),
            )
            logged = oplog.insert(self._db, action)
            self._group_count -= removed
        return removed, logged

    def log_action(self, action: OperatorAction) -> OperatorAction:
        """Log an operator action that touched no group (a halt, a resume)."""
        with self._lock, transaction(self._db):
            return oplog.insert(self._db, action)

    def set_action_count(self, action: OperatorAction, count: int) -> OperatorAction:
        """Correct how many things a logged action touched (a bulk fix that dropped jobs)."""
        with self._lock, transaction(self._db):
            return oplog.set_count(self._db, action, count)

    def operator_actions(
        self, *, limit: int = 100, fingerprint: str | None = None, action: str | None = None
    ) -> list[OperatorAction]:
        """Logged operator actions, newest first (see :func:`.oplog.select`)."""
        with self._reader() as reader:
            return oplog.select(reader, limit=limit, fingerprint=fingerprint, action=action)

    def expire_dismissals(self, now_unix_nano: int | None = None) -> int:
        """Reopen the dismissed groups whose dismissal's end time passed; how many."""
        now = time.time_ns() if now_unix_nano is None else now_unix_nano
        with self._lock, transaction(self._db):
            self._fold_before_write()
            lifted = int(
                self._db.execute(
                    "UPDATE failure_groups SET status = 'open', dismissal = NULL, "
                    "dismissed_until = NULL WHERE dismissed_until IS NOT NULL "
                    "AND dismissed_until <= ? AND status = 'dismissed'",
                    (now,),
                ).rowcount
            )
            if lifted:
                self._forget()
        return lifted

    def series(self, query: SeriesQuery) -> SeriesResult:
        """Occurrences over time (see :func:`.history.read_series`)."""
        where, parameters = _where(query.groups) if query.groups is not None else ("", [])
        with self._reader() as reader:
            return history.read_series(reader, query, where, parameters)

    def prune_hours(self, now_unix_nano: int | None = None) -> int:
        """Delete hourly counts older than :data:`.history.RETENTION_HOURS`; how many rows."""
        now = time.time_ns() if now_unix_nano is None else now_unix_nano
        with self._lock, transaction(self._db):
            return history.prune(self._db, now // HOUR_NANOS - history.RETENTION_HOURS)

    def action_fingerprints(self, action_id: int, limit: int) -> list[str]:
        """The groups an operator action touched, in fingerprint order (at most ``limit``)."""
        with self._reader() as reader:
            rows = reader.execute(
                "SELECT fingerprint FROM operator_action_groups WHERE action_id = ? "
                "ORDER BY fingerprint LIMIT ?",
                (action_id, limit),
            ).fetchall()
        return [row[0] for row in rows]

    def count_groups(self, query: GroupQuery) -> int:
        """How many groups ``query`` selects."""
        where, parameters = _where(query)
        with self._reader() as reader:
            (total,) = reader.execute(
                f"SELECT COUNT(*) FROM failure_groups {where}", parameters
            ).fetchone()
        return int(total)

    def missing(self, fingerprints: Sequence[str]) -> list[str]:
        """Those of ``fingerprints`` that name no group (in the order given)."""
        with self._reader() as reader:
            rows = reader.execute(
                "SELECT value FROM json_each(?) WHERE value NOT IN "
                "(SELECT fingerprint FROM failure_groups) ORDER BY key",
                (json.dumps(list(fingerprints)),),
            ).fetchall()
        return [row[0] for row in rows]

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
        page_where, page_parameters = keyset(query, after, where, parameters)
        with self._reader() as reader:
            counted = f"SELECT COUNT(*) FROM failure_groups {where}"
            (total,) = reader.execute(counted, parameters).fetchone() if count else (-1,)
            rows = reader.execute(
                f"SELECT {_COLUMNS} FROM failure_groups {page_where} {order_by(query)} "
                "LIMIT ? OFFSET ?",
                [*page_parameters, limit, offset],
            ).fetchall()
        return [_group(row) for row in rows], int(total)

    def iter_groups(self, query: GroupQuery, *, chunk: int = 500) -> Iterator[Group]:
        """Every group matching ``query``, in order, read ``chunk`` rows at a time."""
        where, parameters = _where(query)
        with self._reader() as reader:
            cursor = reader.execute(
                f"SELECT {_COLUMNS} FROM failure_groups {where} {order_by(query)}", parameters
            )
            while rows := cursor.fetchmany(chunk):
                for row in rows:
                    yield _group(row)

    def get_group(self, fingerprint: str) -> Group:
        """The group with this fingerprint, or the only one whose fingerprint starts with it.

        Raises :class:`GroupNotFound` or :class:`AmbiguousFingerprint`.
        """
        with self._reader() as reader:
            rows = reader.execute(
                f"SELECT {_COLUMNS} FROM failure_groups WHERE fingerprint >= ? "
                "AND fingerprint < ? ORDER BY fingerprint LIMIT 2",
                (fingerprint, fingerprint + "\uffff"),
            ).fetchall()
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

    def _reader(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        self._fold_before_read()
        return self._file.reader()


class _SQLiteFilters(GroupFilters):
    """SQLite's spelling: ``IN (?, …)``, and JSON searched as text or with ``json_each``."""

    mark = "?"

    def status_column(self, query: GroupQuery) -> str:
        # Most groups are open: a status is no use for finding rows when any other
        # criterion is given. "+status" keeps SQLite from looking each row up through the
        # status index; it uses the other criterion's index (fingerprints, an action, a
        # time) or scans (or walks the sort key's index) instead.
        scanning = bool(
            query.categories
            or query.severities
            or query.exception_types
            or query.services
            or query.text
            or query.handled
            or query.tags
            or query.fingerprints is not None
            or query.action_id
            or query.since_unix_nano
            or query.first_seen_since
            or query.regressed_since
        )
        return "+status" if scanning else "status"

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def any_service(self, services: Sequence[str]) -> tuple[str, list[Any]]:
        # A key of the service_counts JSON object as encode_counts writes it: after "{" or
        # ",", quoted and escaped the same way, then ":" (a substring test, several times
        # cheaper than taking the JSON apart row by row).
        clause = "(" + " OR ".join(["instr(service_counts, ?) > 0"] * (2 * len(services))) + ")"
        parameters: list[Any] = []
        for service in services:
            parameters += ["{" + _escape(service) + ":", "," + _escape(service) + ":"]
        return clause, parameters

    def any_tag(self, tags: Sequence[str]) -> tuple[str, list[Any]]:
        marks = ", ".join("?" * len(tags))
        return f"EXISTS (SELECT 1 FROM json_each(tags) WHERE value IN ({marks}))", list(tags)

    def fingerprint_in(self, fingerprints: Sequence[str]) -> tuple[str, list[Any]]:
        return "fingerprint IN (SELECT value FROM json_each(?))", [json.dumps(fingerprints)]


_where = _SQLiteFilters().where


def order_by(query: GroupQuery) -> str:
    """``ORDER BY`` the query's sort columns, then the fingerprint, all one direction
    (the same SQL in both backends): every group has one place, pages are stable, and
    the sort key's index (which ends with the fingerprint) serves the order.
    ``severity`` orders by severity, then by ``last_seen``."""
    columns = SORT_COLUMNS[query.sort]  # GroupQuery checked it
    direction = "ASC" if query.ascending else "DESC"
    return "ORDER BY " + ", ".join(f"{column} {direction}" for column in (*columns, "fingerprint"))


def keyset(
    query: GroupQuery,
    after: GroupKey | None,
    where: str,
    parameters: Sequence[Any],
    mark: str = "?",
) -> tuple[str, list[Any]]:
    """``where`` (from ``_where``, possibly empty) narrowed to the rows sorted after
    ``after`` — one row-value comparison, ``(columns..., fingerprint) < (values...)``
    (``>`` ascending), which a sort index ending with the fingerprint reads as one
    range — and its parameters (``mark`` is the backend's placeholder). Raises
    ``ValueError`` when ``after`` does not fit the query's sort."""
    if after is None:
        return where, list(parameters)
    columns = (*SORT_COLUMNS[query.sort], "fingerprint")
    values = (*after.values, after.fingerprint)
    if len(values) != len(columns):
        raise ValueError(f"a {query.sort} list's place has {len(columns) - 1} sort values")
    comparison = (
        f"({', '.join(columns)}) {'>' if query.ascending else '<'} "
        f"({', '.join([mark] * len(columns))})"
    )
    return f"{where} AND {comparison}" if where else f"WHERE {comparison}", [*parameters, *values]


def _assignments(update: GroupUpdate) -> tuple[list[str], list[Any]]:
    """SQL ``SET`` items and their parameters."""
    items: list[str] = []
    parameters: list[Any] = []
    if update.status is not None:
        dismissal = update.dismissal if update.status == "dismissed" else None
        items += ["status = ?", "dismissal = ?", "dismissed_until = ?"]
        parameters += [
            update.status,
            None if dismissal is None else json.dumps(dismissal.as_json()),
            dismissal.until if dismissal is not None and dismissal.until else None,
        ]
    if update.category is not None:
        items += ["category = ?", "category_locked = 1"]
        parameters.append(update.category)
    if update.severity is not None:
        items += ["severity = ?", "severity_rank = ?", "severity_locked = 1"]
        parameters += [update.severity, semconv.SEVERITY_RANK.get(update.severity, -1)]
    if update.add_tags or update.remove_tags:
        items.append(
            "tags = (SELECT json_group_array(value) FROM (SELECT value FROM json_each(tags) "
            "WHERE value NOT IN (SELECT value FROM json_each(?)) "
            "UNION SELECT value FROM json_each(?) ORDER BY value))"
        )
        parameters += [json.dumps(update.remove_tags), json.dumps(update.add_tags)]
    return items, parameters


# Built once: json.dumps/loads with options build a new encoder on every call.
_encode: Final = json.JSONEncoder(separators=(",", ":")).encode
_decode: Final = json.JSONDecoder().decode
#: The string escaping ``_encode`` applies (the C function behind ``ensure_ascii``).
_escape: Final = json.encoder.encode_basestring_ascii


def encode_counts(counts: Mapping[str, int]) -> str:
    """``_encode(counts)`` for a map of names to integers, at a third of its cost (it is
    written for every group of every commit)."""
    return "{" + ",".join([f"{_escape(name)}:{count}" for name, count in counts.items()]) + "}"


_INSERT: Final = (
    f"INSERT INTO failure_groups ({_STORED_COLUMNS}) VALUES "
    f"({', '.join('?' * len(_STORED_COLUMNS.split(',')))})"
)
# The lists a merge may grow, and a dismissal whose rate window moved (or that lapsed).
_UPDATE_LISTS: Final = "UPDATE failure_groups SET span_names = ?, samples = ? WHERE fingerprint = ?"
_UPDATE_DISMISSAL: Final = (
    "UPDATE failure_groups SET dismissal = ?, dismissed_until = ? WHERE fingerprint = ?"
)
_UPDATE_REGRESSED: Final = "UPDATE failure_groups SET regressed_at = ? WHERE fingerprint = ?"


# What every merge changes, in the order of _counts: appended to group_log, read back and
# written into failure_groups by the fold.
_COUNT_COLUMNS: Final = (
    "category",
    "severity",
    "severity_rank",
    "status",
    "count",
    "handled_count",
    "first_seen",
    "last_seen",
    "service_counts",
)
#: A group_log row: the count columns, the fingerprint, and what the write added by hour
#: and service (:data:`.history.LOG_COLUMNS`).
_LOG_COLUMNS: Final = (*_COUNT_COLUMNS, "fingerprint", *history.LOG_COLUMNS)
_LOG_FINGERPRINT: Final = len(_COUNT_COLUMNS)
#: Rows per ``INSERT`` into group_log: one statement (one SQLite step, one release of the
#: GIL) per chunk instead of per row; 76 rows x 13 columns stay under the 999 parameters
#: older SQLite builds allow.
_LOG_ROWS_PER_INSERT: Final = 999 // len(_LOG_COLUMNS)


@functools.lru_cache(maxsize=_LOG_ROWS_PER_INSERT)
def _log_insert(rows: int) -> str:
    """``INSERT INTO group_log`` of ``rows`` rows of :data:`_LOG_COLUMNS`."""
    row = f"({', '.join('?' * len(_LOG_COLUMNS))})"
    return f"INSERT INTO group_log ({', '.join(_LOG_COLUMNS)}) VALUES " + ", ".join([row] * rows)


def _log_appends(rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, Sequence[Any]]]:
    """The statements appending ``rows`` (from :func:`_count_columns`) to group_log."""
    return [
        (_log_insert(len(chunk)), [value for row in chunk for value in row])
        for chunk in (
            rows[start : start + _LOG_ROWS_PER_INSERT]
            for start in range(0, len(rows), _LOG_ROWS_PER_INSERT)
        )
    ]


def _write_atomically(db: sqlite3.Connection, writes: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Execute ``writes`` all or none: one statement alone (SQLite makes it atomic, and the
    sqlite3 module releases the GIL once instead of three times), more in a transaction."""
    if len(writes) == 1:
        db.execute(*writes[0])
        return
    with transaction(db):
        for statement, parameters in writes:
            db.execute(statement, parameters)


_LATEST_LOGGED_COUNTS: Final = (
    f"SELECT {', '.join(_COUNT_COLUMNS)}, fingerprint FROM group_log "
    "WHERE id IN (SELECT MAX(id) FROM group_log GROUP BY fingerprint)"
)
_UPDATE_COUNTS: Final = (
    f"UPDATE failure_groups SET {', '.join(f'{name} = ?' for name in _COUNT_COLUMNS)} "
    "WHERE fingerprint = ?"
)


def _counts(group: Group) -> tuple[Any, ...]:
    """The columns merging changes on every write (row positions 4 to 12)."""
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
    )


def _count_columns(group: Group) -> tuple[Any, ...]:
    return (*_counts(group), group.fingerprint)


def _list_columns(group: Group) -> tuple[Any, ...]:
    return (_encode(group.span_names), _encode_samples(group), group.fingerprint)


def _dismissal_columns(group: Group) -> tuple[Any, ...]:
    return (*_encode_dismissal(group), group.fingerprint)


def _encode_samples(group: Group) -> str:
    return _encode([[s.trace_id, s.span_id, s.service, s.time_unix_nano] for s in group.samples])


def _encode_dismissal(group: Group) -> tuple[str | None, int | None]:
    """The ``dismissal`` and ``dismissed_until`` columns."""
    if group.dismissal is None:
        return None, None
    return _encode(group.dismissal.as_json()), group.dismissal.until or None


def _row(group: Group) -> tuple[Any, ...]:
    return (
        group.fingerprint,
        group.exception_type,
        group.message,
        group.stacktrace,
        *_counts(group),
        _encode(group.span_names),
        _encode_samples(group),
        int(group.category_locked),
        _encode(group.tags),
        int(group.severity_locked),
        *_encode_dismissal(group),
        group.regressed_at,
    )


def _group(row: Sequence[Any]) -> Group:
    return Group(
        fingerprint=row[0],
        exception_type=row[1],
        message=row[2],
        stacktrace=row[3],
        category=row[4],
        severity=row[5],
        status=row[6],
        count=row[7],
        handled_count=row[8],
        first_seen=row[9],
        last_seen=row[10],
        service_counts=_decode(row[11]),
        span_names=_decode(row[12]),
        samples=[Sample(*sample) for sample in _decode(row[13])],
        category_locked=bool(row[14]),
        tags=_decode(row[15]),
        severity_locked=bool(row[16]),
        dismissal=None if row[17] is None else Dismissal.from_json(_decode(row[17])),
        regressed_at=row[19],
    )
