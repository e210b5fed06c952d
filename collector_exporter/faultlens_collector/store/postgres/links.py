"""The link tables in PostgreSQL (:class:`PostgresLinkStore`), shared by every processor
of the fleet.

The tables, their migration (component ``links``) and the statements are the SQLite
backend's (:mod:`..sqlite.links`; plain SQL both run). Writes are additive
(``INSERT … ON CONFLICT … DO UPDATE SET traces = traces + excluded.traces``), so the
links processors decide from the traces each of them saw add up in the one table
instead of overwriting each other; a batch's rows are written in (cause, symptom)
order so two processors writing the same links queue on the rows instead of
deadlocking. :attr:`PostgresLinkStore.version` counts this processor's writes only:
what other processors write is seen by readers whose cache expires
(:data:`faultlens_collector.causes.view.REFRESH_SECONDS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from faultlens_collector.causes.links import LinkChange
from faultlens_collector.causes.store import StoredLink
from faultlens_collector.store.postgres.server import PostgresServer, changed_rows
from faultlens_collector.store.sqlite import links as sqlite_links

if TYPE_CHECKING:
    import psycopg

_WHAT: Final = "link store"
_UPSERT: Final = sqlite_links.UPSERT.replace("?", "%s")
_RESET: Final = sqlite_links.RESET.replace("?", "%s")
_COLUMNS: Final = "cause, symptom, traces, occurrences, first_seen, last_seen"


class PostgresLinkStore:
    """A :class:`~faultlens_collector.causes.store.LinkStore` on the database of
    ``server`` (tables created and migrated here; take it from
    :meth:`.database.PostgresDatabase.link_store`). Raises
    :class:`~faultlens_collector.store.errors.SchemaError` when the database cannot be
    used."""

    def __init__(self, server: PostgresServer) -> None:
        self._server = server
        server.migrate(sqlite_links.COMPONENT, sqlite_links.MIGRATIONS, what=_WHAT)
        #: Bumped by every write of this processor.
        self.version = 0

    def close(self) -> None:
        """Nothing to finish (every write is committed); the database closes the pool."""

    def apply(self, changes: Mapping[tuple[str, str], LinkChange]) -> None:
        """Add ``changes`` (from :func:`~faultlens_collector.causes.links.changes`) in one
        transaction. Raises (and changes nothing) when it cannot commit."""
        if not changes:
            return
        rows = [
            (cause, symptom, change.traces, change.occurrences, change.first_seen, change.last_seen)
            for (cause, symptom), change in sorted(changes.items())
        ]
        shrinks = any(change.traces < 0 or change.occurrences < 0 for change in changes.values())

        def work(connection: psycopg.Connection[Any]) -> None:
            with connection.cursor() as cursor:
                cursor.executemany(_UPSERT, rows)
            if shrinks:
                connection.execute(sqlite_links.DELETE_EMPTY)

        self._server.run(work, _WHAT)
        self.version += 1

    def reset(self, counts: Mapping[str, int]) -> int:
        """Forget the links of these symptom groups (they were resolved) and measure their
        shares from their current occurrence counts on; returns the links deleted."""
        if not counts:
            return 0
        symptoms = sorted(counts)

        def work(connection: psycopg.Connection[Any]) -> int:
            deleted = changed_rows(
                connection, "DELETE FROM group_links WHERE symptom = ANY(%s)", (symptoms,)
            )
            with connection.cursor() as cursor:
                cursor.executemany(_RESET, [(symptom, counts[symptom]) for symptom in symptoms])
            return deleted

        deleted = self._server.run(work, _WHAT)
        self.version += 1
        return deleted

    def links_of(self, fingerprints: Iterable[str]) -> list[StoredLink]:
        """Every link whose cause or symptom is one of ``fingerprints``."""
        wanted = list(dict.fromkeys(fingerprints))
        if not wanted:
            return []
        return [
            StoredLink(*row)
            for row in self._rows(
                f"SELECT {_COLUMNS} FROM group_links "
                "WHERE cause = ANY(%s) OR symptom = ANY(%s) ORDER BY cause, symptom",
                (wanted, wanted),
            )
        ]

    def all_links(self) -> list[StoredLink]:
        """Every link."""
        return [
            StoredLink(*row)
            for row in self._rows(f"SELECT {_COLUMNS} FROM group_links ORDER BY cause, symptom")
        ]

    def resets(self, fingerprints: Iterable[str] | None = None) -> dict[str, int]:
        """The occurrence counts at the last reset, of ``fingerprints`` (None: all)."""
        if fingerprints is None:
            rows = self._rows("SELECT fingerprint, count FROM group_link_resets")
        else:
            rows = self._rows(
                "SELECT fingerprint, count FROM group_link_resets WHERE fingerprint = ANY(%s)",
                (list(dict.fromkeys(fingerprints)),),
            )
        return {str(fingerprint): int(count) for fingerprint, count in rows}

    def _rows(self, sql: str, parameters: Any = ()) -> list[tuple[Any, ...]]:
        with self._server.connection(_WHAT) as connection:
            return connection.execute(sql, parameters).fetchall()
