"""SQLite plumbing shared by every faultlens table set: open, migrate, transact.

Each component (``groups``, ``actions``) owns a tuple of migrations and records
the version it reached in the ``faultlens_schema`` table under its own name, so
several components share one database file and migrate independently. A
database written by a newer faultlens is refused rather than misread.

Databases run in WAL mode with ``synchronous=NORMAL``: a committed transaction
survives a crash (``kill -9``) of the process; an operating-system crash or
power loss may lose the last transactions. ``durable=True`` selects
``synchronous=FULL`` for those too, at the cost of an fsync per commit.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType


class SchemaError(RuntimeError):
    """The database cannot be opened, or holds a schema this version cannot use."""


def open_database(path: str | Path, *, what: str, durable: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the SQLite file at ``path`` for use from any thread.

    The connection is in autocommit mode (use :class:`transaction`), WAL
    journaling, a 5 s busy timeout. Raises :class:`SchemaError` naming ``what``
    when the file cannot be used as a database, or cannot be written (SQLite
    would otherwise open a read-only file read-only, and every commit would fail
    later).
    """
    try:
        connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise SchemaError(f"cannot use {path} as the {what}: {exc}") from exc
    try:
        connection.execute("PRAGMA busy_timeout = 5000")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        # A write that changes nothing: fails at once on a read-only file.
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        connection.execute(f"PRAGMA user_version = {int(version)}")
    except sqlite3.Error as exc:
        connection.close()
        raise SchemaError(f"cannot use {path} as the {what}: {exc}") from exc
    return connection


def apply_migrations(
    connection: sqlite3.Connection, component: str, migrations: Sequence[Sequence[str]]
) -> int:
    """Bring ``component``'s tables to version ``len(migrations)``.

    Version N is ``migrations[N - 1]``. Idempotent; each version is applied in
    its own transaction. Returns the version found before. Raises
    :class:`SchemaError` when the database is newer than ``migrations``.
    """
    latest = len(migrations)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS faultlens_schema "
        "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    row = connection.execute(
        "SELECT version FROM faultlens_schema WHERE component = ?", (component,)
    ).fetchone()
    found = int(row[0]) if row else 0
    if found > latest:
        raise SchemaError(
            f"the {component} tables are at schema version {found}, newer than this faultlens "
            f"understands ({latest}); upgrade faultlens"
        )
    for version in range(found + 1, latest + 1):
        with transaction(connection):
            for statement in migrations[version - 1]:
                connection.execute(statement)
            connection.execute(
                "INSERT OR REPLACE INTO faultlens_schema (component, version) VALUES (?, ?)",
                (component, version),
            )
    return found


class transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` when the block raises.

    The error that ended the transaction is the one raised: SQLite rolls some
    transactions back by itself (a full disk, an I/O error), and a ``ROLLBACK``
    then would fail and hide the cause. A ``COMMIT`` that fails is rolled back
    too, so the connection never stays inside a transaction the next
    ``BEGIN`` would trip over.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self.connection.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            return
        self._rollback()

    def _rollback(self) -> None:
        if self.connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.connection.execute("ROLLBACK")
