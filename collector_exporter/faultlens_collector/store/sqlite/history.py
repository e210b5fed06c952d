"""Occurrences over time: hourly counts per failure group and service.

The store keeps one row per (group, hour, service) in ``group_hours``. The ingest
write does not touch that table: each ``group_log`` entry of a known group carries
the hour, the service and the number of occurrences the write added (one entry per
distinct hour and service of the write, usually one), so counting stays inside the
single ``INSERT`` an ingest write is; the fold sums the log into ``group_hours``
(:data:`FOLD_HOURS`). A new group's first occurrences go straight into
``group_hours`` in the transaction that creates the group. Either way the counts
commit with the occurrences they count.

A service beyond the group's :data:`~.groups.MAX_SERVICES` is counted as
``(other)``, as in the group's ``service_counts``. An occurrence without a time is
counted at the processor's clock. Hours older than the retention (default
:data:`RETENTION_HOURS`) are deleted by the processor's maintenance.

:func:`read_series` answers the control API's ``GetSeries``: per group, or summed by
category, severity, status or service (joined with the groups' current values), in
buckets of whole hours.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from faultlens_collector.groups.model import HOUR_NANOS, OTHER_SERVICES, Merged, Occurrence
from faultlens_collector.groups.store import SeriesQuery, SeriesResult

#: Hours of counts kept (30 days).
RETENTION_HOURS: Final = 30 * 24

TABLES: Final = (
    """CREATE TABLE group_hours (
        fingerprint TEXT NOT NULL,
        hour INTEGER NOT NULL,
        service TEXT NOT NULL,
        occurrences INTEGER NOT NULL,
        PRIMARY KEY (fingerprint, hour, service)) WITHOUT ROWID""",
    "CREATE INDEX group_hours_by_hour ON group_hours (hour)",
    # What each ingest write added, by hour and service (see the module docstring).
    "ALTER TABLE group_log ADD COLUMN hour INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE group_log ADD COLUMN service TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE group_log ADD COLUMN added INTEGER NOT NULL DEFAULT 0",
)
#: The ``group_log`` columns this module adds, in the order :func:`hour_counts` yields them.
LOG_COLUMNS: Final = ("hour", "service", "added")

_UPSERT_TAIL: Final = (
    " ON CONFLICT (fingerprint, hour, service) "
    "DO UPDATE SET occurrences = occurrences + excluded.occurrences"
)
#: Sum the log into group_hours (inside the fold's transaction, before the log is emptied).
FOLD_HOURS: Final = (
    "INSERT INTO group_hours (fingerprint, hour, service, occurrences) "
    "SELECT fingerprint, hour, service, SUM(added) FROM group_log WHERE added > 0 "
    "GROUP BY fingerprint, hour, service" + _UPSERT_TAIL
)
#: Rows per upsert of a new group's hours (4 parameters each, under SQLite's 999).
_ROWS_PER_UPSERT: Final = 249


def hour_counts(
    merged: Merged, batch: Sequence[Occurrence], services: Mapping[str, int], now: int
) -> Iterable[tuple[int, str, int]]:
    """(hour, service, occurrences) of ``batch`` as :func:`.groups.merge` merged it into
    a group whose ``service_counts`` are now ``services``. A batch of one hour and one
    service (the usual case: ``merged`` knows it) gives one item without another pass."""
    if merged.hour is not None:
        service = merged.service
        return ((merged.hour, service if service in services else OTHER_SERVICES, merged.added),)
    counts: dict[tuple[int, str], int] = {}
    for occurrence in batch:
        service = occurrence.service
        key = (
            (occurrence.time_unix_nano or now) // HOUR_NANOS,
            service if service in services else OTHER_SERVICES,
        )
        counts[key] = counts.get(key, 0) + occurrence.count
    return [(hour, service, added) for (hour, service), added in counts.items()]


def upserts(rows: Sequence[tuple[str, int, str, int]]) -> list[tuple[str, list[Any]]]:
    """Statements adding ``rows`` (fingerprint, hour, service, occurrences) to group_hours."""
    statements = []
    for start in range(0, len(rows), _ROWS_PER_UPSERT):
        chunk = rows[start : start + _ROWS_PER_UPSERT]
        statements.append(
            (
                "INSERT INTO group_hours (fingerprint, hour, service, occurrences) VALUES "
                + ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                + _UPSERT_TAIL,
                [value for row in chunk for value in row],
            )
        )
    return statements


def prune(db: sqlite3.Connection, before_hour: int) -> int:
    """Delete the counts of hours before ``before_hour``; how many rows."""
    return int(db.execute("DELETE FROM group_hours WHERE hour < ?", (before_hour,)).rowcount)


def read_series(
    db: Any,
    query: SeriesQuery,
    where: str,
    parameters: Sequence[Any],
    *,
    mark: str = "?",
    members: str = "IN (SELECT value FROM json_each(?))",
) -> SeriesResult:
    """Run ``query`` on a reader connection; ``where`` and ``parameters`` select the
    groups ``query.groups`` names (a ``WHERE`` clause over failure_groups). ``mark`` is
    the placeholder and ``members`` the test "in this JSON list" of the connection's
    database (the PostgreSQL backend reads the same table with ``%s``)."""
    clauses = [f"h.hour >= {mark}", f"h.hour < {mark}"]
    arguments: list[Any] = [query.start_hour, query.end_hour]
    if query.fingerprints:
        clauses.append(f"h.fingerprint {members}")
        arguments.append(_json_list(query.fingerprints))
        key = "h.fingerprint"
    else:
        if where:
            clauses.append(f"h.fingerprint IN (SELECT fingerprint FROM failure_groups {where})")
            arguments.extend(parameters)
        services = query.groups.services if query.groups is not None else ()
        if services:
            clauses.append(f"h.service {members}")
            arguments.append(_json_list(services))
        key = {
            "fingerprint": "h.fingerprint",
            "service": "h.service",
            "": "'total'",
        }.get(query.group_by, f"g.{query.group_by}")
    join = "JOIN failure_groups g ON g.fingerprint = h.fingerprint" if key.startswith("g.") else ""
    condition = " AND ".join(clauses)
    keys: list[str] | None = None
    more = 0
    if query.group_by == "fingerprint" and not query.fingerprints:
        # Many keys: pick the top ones in SQL before reading their buckets.
        totals = db.execute(
            "SELECT h.fingerprint, SUM(h.occurrences) AS total FROM group_hours h "
            f"WHERE {condition} GROUP BY h.fingerprint ORDER BY total DESC, h.fingerprint "
            f"LIMIT {mark}",
            [*arguments, query.limit + 1],
        ).fetchall()
        keys = [row[0] for row in totals[: query.limit]]
        if len(totals) > query.limit:
            (count,) = db.execute(
                f"SELECT COUNT(DISTINCT h.fingerprint) FROM group_hours h WHERE {condition}",
                arguments,
            ).fetchone()
            more = int(count) - query.limit
        condition += f" AND h.fingerprint {members}"
        arguments.append(_json_list(keys))
    rows = db.execute(
        f"SELECT {key}, h.hour, SUM(h.occurrences) FROM group_hours h {join} WHERE {condition} "
        "GROUP BY 1, 2",
        arguments,
    ).fetchall()
    buckets = query.buckets
    by_key: dict[str, list[int]] = {
        name: [0] * buckets for name in (query.fingerprints or keys or ())
    }
    for name, hour, occurrences in rows:
        counts = by_key.get(name)
        if counts is None:
            counts = by_key[name] = [0] * buckets
        counts[(hour - query.start_hour) // query.bucket_hours] += occurrences
    ordered = sorted(
        ((name, counts, sum(counts)) for name, counts in by_key.items()),
        key=lambda item: (-item[2], item[0]),
    )
    if keys is None and len(ordered) > query.limit:
        more = len(ordered) - query.limit
        ordered = ordered[: query.limit]
    return SeriesResult(ordered, more)


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values))
