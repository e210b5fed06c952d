"""One SQLite file as the stores use it (:class:`SQLiteFile`): its connections, its
durability, its migrations, transactions.

**Connections.** A file has **one writer connection**, shared by every store of the
database and guarded by one lock (:attr:`SQLiteFile.lock`): whoever writes holds it,
so the group store's commits and the action store's writes never interleave on the
connection, and never wait in SQLite's busy handler for each other (SQLite lets one
writer at a time anyway; the lock makes the wait exact instead of a sleep). Reads of
groups use a short-lived read-only connection each (:meth:`SQLiteFile.reader`): in
WAL mode they never wait for a write, nor a write for them.

**Durability**, decided here for every table of the file: WAL with
``synchronous=NORMAL`` — a committed transaction survives a crash (``kill -9``) of
the process; an operating-system crash or power loss may lose the last transactions.
``durable=True`` selects ``synchronous=FULL`` for those too, at the cost of an fsync
per commit. A temporary file (``:memory:``, see
:class:`~faultlens_collector.store.sqlite.database.SQLiteDatabase`) keeps nothing
past its database and runs with ``synchronous=OFF``.

**Migrations.** Each component (``groups``, ``actions``) owns a tuple of migrations
and records the version it reached in the ``faultlens_schema`` table under its own
name, so several components share one file and migrate independently. A file written
by a newer faultlens is refused rather than misread.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

from faultlens_collector.store.errors import SchemaError, StoreError

Synchronous = Literal["OFF", "NORMAL", "FULL"]
#: The page cache of the writer connection (KiB); readers get at most 4 MiB each.
DEFAULT_CACHE_KIB: Final = 16 * 1024
#: Address space a reader maps the file into (not memory: the OS page cache backs it).
READ_MMAP_BYTES: Final = 1 << 30


def connect(
    path: str | Path, *, what: str, synchronous: Synchronous = "NORMAL"
) -> sqlite3.Connection:
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
        connection.execute(f"PRAGMA synchronous = {synchronous}")
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


class SQLiteFile:
    """One SQLite file: its writer connection (opened on first use) and the lock that
    guards it, read-only readers, migrations (see the module docstring).

    ``temporary`` names a directory holding only this file, removed on :meth:`close`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        durable: bool = False,
        cache_kib: int = DEFAULT_CACHE_KIB,
        temporary: str | None = None,
    ) -> None:
        self.path = str(path)
        self.durable = durable
        self.cache_kib = cache_kib
        self.temporary = temporary
        #: Held by whoever writes through :meth:`connection` (or reads what it writes).
        self.lock = threading.Lock()
        self._opening = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    @property
    def synchronous(self) -> Synchronous:
        """``FULL`` when durable, ``OFF`` for a temporary file, ``NORMAL`` otherwise."""
        if self.durable:
            return "FULL"
        return "OFF" if self.temporary is not None else "NORMAL"

    def connection(self, what: str = "failure store") -> sqlite3.Connection:
        """The writer connection, opened on first use; raises :class:`SchemaError`
        naming ``what`` when the file cannot be used, :class:`StoreError` once closed."""
        with self._opening:
            if self._connection is None:
                if self._closed:
                    raise StoreError(f"the {what} at {self.path} is closed")
                connection = connect(self.path, what=what, synchronous=self.synchronous)
                connection.execute(f"PRAGMA cache_size = -{int(self.cache_kib)}")
                self._connection = connection
            return self._connection

    def migrate(self, component: str, migrations: Sequence[Sequence[str]], *, what: str) -> int:
        """Bring ``component``'s tables to their latest version (see
        :func:`apply_migrations`); errors are :class:`SchemaError` naming ``what``."""
        connection = self.connection(what)
        try:
            with self.lock:
                return apply_migrations(connection, component, migrations)
        except SchemaError:
            raise
        except sqlite3.Error as exc:
            raise SchemaError(f"cannot use {self.path} as the {what}: {exc}") from exc

    @contextlib.contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A short-lived read-only connection (closed when the block ends)."""
        uri = f"{Path(self.path).absolute().as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA cache_size = -{min(self.cache_kib, 4096)}")
            connection.execute("PRAGMA busy_timeout = 5000")
            # Scans (a filter on a column no index has, a search text) read the file
            # through the OS page cache without a system call per page.
            connection.execute(f"PRAGMA mmap_size = {READ_MMAP_BYTES}")
            yield connection
        finally:
            connection.close()

    def close(self) -> None:
        """Close the writer connection (a later write raises) and remove a temporary
        file. Idempotent."""
        with self._opening:
            self._closed = True
            connection, self._connection = self._connection, None
        if connection is not None:
            with self.lock:
                connection.close()
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
