"""The link tables in SQLite (:class:`SQLiteLinkStore`): ``group_links`` and
``group_link_resets``, migrated under the component name ``links`` in the processor's
one database file, written through the file's writer connection under its lock
(:mod:`.connection` decides durability). See :mod:`faultlens_collector.causes.store`
for what the store does; the SQL is plain (``INSERT … ON CONFLICT … DO UPDATE``): the
PostgreSQL backend (:mod:`..postgres.links`) runs the same tables and statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from faultlens_collector.causes.links import LinkChange
from faultlens_collector.causes.store import StoredLink
from faultlens_collector.store.sqlite.connection import SQLiteFile, transaction

COMPONENT: Final = "links"
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE group_links (
            cause TEXT NOT NULL,
            symptom TEXT NOT NULL,
            traces BIGINT NOT NULL,
            occurrences BIGINT NOT NULL,
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL,
            PRIMARY KEY (cause, symptom))""",
        "CREATE INDEX group_links_symptom ON group_links (symptom)",
        """CREATE TABLE group_link_resets (
            fingerprint TEXT PRIMARY KEY,
            count BIGINT NOT NULL)""",
    ),
)
#: The statements, with ``?`` placeholders (the PostgreSQL backend runs them with ``%s``).
UPSERT: Final = (
    "INSERT INTO group_links (cause, symptom, traces, occurrences, first_seen, last_seen) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (cause, symptom) DO UPDATE SET "
    "traces = group_links.traces + excluded.traces, "
    "occurrences = group_links.occurrences + excluded.occurrences, "
    "first_seen = CASE WHEN excluded.first_seen > 0 AND excluded.first_seen < "
    "group_links.first_seen THEN excluded.first_seen ELSE group_links.first_seen END, "
    "last_seen = CASE WHEN excluded.last_seen > group_links.last_seen "
    "THEN excluded.last_seen ELSE group_links.last_seen END"
)
RESET: Final = (
    "INSERT INTO group_link_resets (fingerprint, count) VALUES (?, ?) "
    "ON CONFLICT (fingerprint) DO UPDATE SET count = excluded.count"
)
DELETE_EMPTY: Final = "DELETE FROM group_links WHERE traces <= 0 OR occurrences <= 0"
#: Bound on the fingerprints of one ``IN (…)`` list.
_CHUNK: Final = 500


class SQLiteLinkStore:
    """A :class:`~faultlens_collector.causes.store.LinkStore` in ``file`` (tables created
    and migrated here; take it from :meth:`.database.SQLiteDatabase.link_store`). Raises
    :class:`~faultlens_collector.store.errors.SchemaError` when the file cannot be used.
    """

    def __init__(self, file: SQLiteFile) -> None:
        self.path = file.path
        self._lock = file.lock
        file.migrate(COMPONENT, MIGRATIONS, what="link store")
        self._db = file.connection()
        #: Bumped by every write (readers cache what they derive from the links by it).
        self.version = 0

    def close(self) -> None:
        """Nothing to finish (every write is committed); the database closes the
        connection."""

    def apply(self, changes: Mapping[tuple[str, str], LinkChange]) -> None:
        """Add ``changes`` (from :func:`~.links.changes`) in one transaction. Raises
        ``sqlite3.Error`` (and changes nothing) when it cannot commit."""
        if not changes:
            return
        rows = [
            (cause, symptom, change.traces, change.occurrences, change.first_seen, change.last_seen)
            for (cause, symptom), change in changes.items()
        ]
        with self._lock:
            with transaction(self._db):
                self._db.executemany(UPSERT, rows)
                if any(change.traces < 0 or change.occurrences < 0 for change in changes.values()):
                    self._db.execute(DELETE_EMPTY)
            self.version += 1

    def reset(self, counts: Mapping[str, int]) -> int:
        """Forget the links of these symptom groups (they were resolved: what happens
        next is a new episode) and measure their shares from their current occurrence
        counts on; returns how many links were deleted."""
        if not counts:
            return 0
        deleted = 0
        with self._lock:
            with transaction(self._db):
                for chunk in _chunks(list(counts)):
                    marks = ", ".join("?" * len(chunk))
                    cursor = self._db.execute(
                        f"DELETE FROM group_links WHERE symptom IN ({marks})", chunk
                    )
                    deleted += max(cursor.rowcount, 0)
                self._db.executemany(RESET, list(counts.items()))
            self.version += 1
        return deleted

    def links_of(self, fingerprints: Iterable[str]) -> list[StoredLink]:
        """Every link whose cause or symptom is one of ``fingerprints``."""
        found: dict[tuple[str, str], StoredLink] = {}
        for chunk in _chunks(list(dict.fromkeys(fingerprints))):
            marks = ", ".join("?" * len(chunk))
            for row in self._rows(
                "SELECT cause, symptom, traces, occurrences, first_seen, last_seen "
                f"FROM group_links WHERE cause IN ({marks}) OR symptom IN ({marks})",
                [*chunk, *chunk],
            ):
                link = StoredLink(*row)
                found[(link.cause, link.symptom)] = link
        return list(found.values())

    def all_links(self) -> list[StoredLink]:
        """Every link."""
        return [
            StoredLink(*row)
            for row in self._rows(
                "SELECT cause, symptom, traces, occurrences, first_seen, last_seen "
                "FROM group_links ORDER BY cause, symptom"
            )
        ]

    def resets(self, fingerprints: Iterable[str] | None = None) -> dict[str, int]:
        """The occurrence counts at the last reset, of ``fingerprints`` (None: all)."""
        if fingerprints is None:
            return dict(self._rows("SELECT fingerprint, count FROM group_link_resets"))
        found: dict[str, int] = {}
        for chunk in _chunks(list(dict.fromkeys(fingerprints))):
            marks = ", ".join("?" * len(chunk))
            found.update(
                self._rows(
                    f"SELECT fingerprint, count FROM group_link_resets "
                    f"WHERE fingerprint IN ({marks})",
                    chunk,
                )
            )
        return found

    def _rows(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
