"""One PostgreSQL database as the stores use it (:class:`PostgresServer`): its URL, its
connection pool, transactions that retry, migrations, and what its errors mean.

**The URL** is a libpq connection URI, ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB``
with any libpq parameter in its query string (``sslmode=verify-full``,
``sslrootcert=…``, ``sslcert=…``, ``connect_timeout=…``, ``application_name=…``);
``PGPASSWORD``, ``~/.pgpass`` (``PGPASSFILE``) and the other ``PG*`` variables work as
with ``psql``, so the password need not be in the URL (where ``ps`` shows it). The
password never appears in a message, a log line or :attr:`PostgresServer.location`
(:func:`redact_url`).

**Connections** come from a :class:`psycopg_pool.ConnectionPool` (``autocommit``:
every transaction is explicit). A connection the server dropped is discarded when it
comes back and replaced in the background; while the server is down, taking a
connection fails after ``wait_timeout`` seconds with :class:`StoreUnavailable`, so
callers fail fast (ingest answers ``UNAVAILABLE``) and recover by themselves when the
server returns — nothing needs a restart.

**Transactions** (:meth:`PostgresServer.run`) run a function on one connection inside
``BEGIN`` … ``COMMIT`` (pipelined) and run it again (at most :data:`ATTEMPTS` times)
when the server aborted it for a deadlock or a serialization failure, or when the
function asks for it (:class:`Retry`). A ``COMMIT`` whose answer was lost with the
connection is *in doubt*: :meth:`PostgresServer.resolve` asks the server, on another
connection, whether that transaction (by its id, ``pg_current_xact_id()``, sent with
``BEGIN``) committed (``pg_xact_status``), waiting for the server to come back when it
must; only an outcome still unknown then is reported as :class:`CommitInDoubt`.

**Durability** is the server's: a commit returns once PostgreSQL's
``synchronous_commit`` is satisfied (``on`` by default: flushed to its WAL, and to a
synchronous standby when one is configured). ``durable=True`` sets
``synchronous_commit = on`` for faultlens' sessions, whatever the server's default.

**Migrations** work as in the SQLite backend — one version per component in
``faultlens_schema`` — and run under a transaction-scoped advisory lock, so processors
started together migrate once, one after the other (PostgreSQL's DDL is
transactional: a version is applied whole or not at all).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from faultlens_collector.groups.store import CommitInDoubt
from faultlens_collector.store.errors import SchemaError, StoreError

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: URL schemes taken as PostgreSQL (libpq's two).
SCHEMES: Final = ("postgresql", "postgres")
#: How many times a transaction is run when the server aborts it for a deadlock or a
#: serialization failure (or the transaction asks to be run again).
ATTEMPTS: Final = 8
#: The advisory lock key held while migrating (``faultlens`` in ASCII, as an int64).
MIGRATION_LOCK: Final = 0x6661756C746C656E
_INSTALL_HINT: Final = (
    "the PostgreSQL store needs psycopg 3 and psycopg_pool: pip install 'faultlens[postgres]'"
)


class StoreUnavailable(StoreError):
    """The database cannot be reached (or stopped answering): nothing was written."""


class Retry(Exception):
    """Raised inside :meth:`PostgresServer.run`: roll back and run the transaction again."""


def is_postgres_url(location: str) -> bool:
    """Whether ``location`` names a PostgreSQL database (``postgresql://`` / ``postgres://``)."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def redact_url(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter),
    for messages; a URL that does not parse is reduced to its scheme."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostinfo = netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            netloc = f"{user}@{hostinfo}" if user else hostinfo
        query = urlencode(
            [
                (key, "***" if key.lower() == "password" else value)
                for key, value in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="/*:",
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return f"{url.partition('://')[0]}://…"


def _password(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        for key, value in parse_qsl(parts.query):
            if key.lower() == "password" and value:
                return value
        return parts.password or None
    except ValueError:
        return None


def holder_name() -> str:
    """How this processor names itself in leases: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class PostgresServer:
    """The PostgreSQL database at ``url``: a pool of connections (opened on first use),
    transactions, migrations (see the module docstring). Thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        durable: bool = False,
        min_connections: int = 1,
        max_connections: int = 8,
        connect_timeout: float = 5.0,
        wait_timeout: float = 3.0,
        statement_timeout: float = 30.0,
    ) -> None:
        if not is_postgres_url(url):
            raise StoreError(f"not a PostgreSQL URL: {redact_url(url)}")
        self.url = url
        self.location = redact_url(url)
        self.durable = durable
        self.min_connections = min_connections
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.wait_timeout = wait_timeout
        self.statement_timeout = statement_timeout
        self._secret = _password(url)
        self._opening = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._closed = False
        self.errors = _errors()

    # messages
    def describe(self, error: BaseException) -> str:
        """``error`` as one line, without the password."""
        text = " ".join(str(error).split()) or type(error).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def unavailable(self, error: BaseException, what: str = "failure store") -> StoreUnavailable:
        return StoreUnavailable(
            f"the {what} at {self.location} is unavailable: {self.describe(error)}"
        )

    # connections
    def pool(self) -> psycopg_pool.ConnectionPool[Any]:
        """The connection pool, opened on first use (raises :class:`StoreError` once closed)."""
        with self._opening:
            if self._pool is None:
                if self._closed:
                    raise StoreError(f"the store at {self.location} is closed")
                import psycopg
                from psycopg_pool import ConnectionPool

                kwargs: dict[str, Any] = {"autocommit": True}
                if "connect_timeout" not in self.url:
                    kwargs["connect_timeout"] = max(1, round(self.connect_timeout))
                if "application_name" not in self.url:
                    kwargs["application_name"] = "faultlens"
                # One connection first, so that a wrong host, database, password or TLS
                # setting is reported with the server's own words (the pool would only
                # time out); afterwards the pool reconnects on its own.
                try:
                    psycopg.connect(self.url, **kwargs).close()
                except psycopg.Error as exc:
                    raise StoreUnavailable(
                        f"cannot connect to {self.location}: {self.describe(exc)}"
                    ) from exc
                # It logs a warning per failed connection attempt; the stores report a
                # database that cannot be reached themselves (once a minute).
                pool_log = logging.getLogger("psycopg.pool")
                if pool_log.level == logging.NOTSET:
                    pool_log.setLevel(logging.ERROR)
                self._pool = ConnectionPool(
                    self.url,
                    kwargs=kwargs,
                    min_size=self.min_connections,
                    max_size=self.max_connections,
                    configure=self._configure,
                    timeout=self.wait_timeout,
                    reconnect_timeout=60.0,
                    name="faultlens",
                    open=False,
                )
                self._pool.open(wait=False)
            return self._pool

    def _configure(self, connection: psycopg.Connection[Any]) -> None:
        """Session settings of every new connection: a statement never hangs forever, a
        transaction left open by a stuck processor does not hold its row locks forever,
        ``durable`` asks for synchronous commits."""
        settings = [
            f"SET statement_timeout = {int(self.statement_timeout * 1000)}",
            "SET idle_in_transaction_session_timeout = 60000",
        ]
        if self.durable:
            settings.append("SET synchronous_commit = on")
        for statement in settings:
            connection.execute(statement)

    @contextlib.contextmanager
    def connection(self, what: str = "failure store") -> Iterator[psycopg.Connection[Any]]:
        """A connection from the pool for the block (in autocommit mode; use
        :meth:`run` for transactions). Connection errors become
        :class:`StoreUnavailable` naming ``what``."""
        errors = self.errors
        try:
            with self.pool().connection() as connection:
                yield connection
        except (errors.PoolTimeout, errors.OperationalError, errors.InterfaceError) as exc:
            if isinstance(exc, errors.QueryCanceled):  # statement_timeout: a query, not the link
                raise
            raise self.unavailable(exc, what) from exc

    def run(self, work: Callable[[psycopg.Connection[Any]], T], what: str = "failure store") -> T:
        """``work(connection)`` inside one transaction, committed when it returns; run
        again after a deadlock, a serialization failure or :class:`Retry`.

        The transaction runs in pipeline mode: ``BEGIN`` travels with ``work``'s first
        statements, ``COMMIT`` with its last ones, so a transaction that reads once and
        then writes costs two round trips, one that only writes one. An error that comes
        with or after ``COMMIT`` (a broken link, a server shutting down, which may report
        the error after committing) is never taken at its word: the server is asked
        whether the transaction committed (:meth:`resolve`) and a committed one returns
        normally. Raises :class:`StoreUnavailable` when the server cannot be reached or
        the transaction did not commit for want of it, :class:`CommitInDoubt` when the
        outcome stays unknown (the link broke before even the transaction's id came
        back), and the server's error for anything else (nothing was kept)."""
        errors = self.errors
        retryable = (errors.DeadlockDetected, errors.SerializationFailure, Retry)
        for attempt in range(1, ATTEMPTS + 1):
            with self.connection(what) as connection:
                committing = False
                try:
                    with connection.pipeline():
                        connection.execute("BEGIN")
                        started = connection.execute("SELECT pg_current_xact_id()::text")
                        result = work(connection)
                        committing = True
                        connection.execute("COMMIT")
                    return result
                except BaseException as exc:
                    xid = _first_value(started) if committing else None
                    _rollback(connection)
                    if committing and isinstance(exc, errors.Error):
                        # COMMIT may have reached the server: a broken link, or a server
                        # shutting down, can report an error after committing. Ask it.
                        if xid is not None:
                            if self.resolve(xid, what):
                                return result
                        elif _link_lost(exc):
                            raise CommitInDoubt(
                                f"the connection to the {what} at {self.location} was lost "
                                f"while committing: {self.describe(exc)}"
                            ) from exc
                    if isinstance(exc, retryable) and attempt < ATTEMPTS:
                        time.sleep(0.001 * attempt)
                        continue
                    if isinstance(
                        exc, (errors.OperationalError, errors.InterfaceError)
                    ) and not isinstance(exc, errors.QueryCanceled):
                        raise self.unavailable(exc, what) from exc
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def resolve(self, xid: str, what: str = "failure store", wait: float = 20.0) -> bool:
        """Whether transaction ``xid`` committed, asked on another connection: True
        committed, False aborted (or unknown to the server). Waits up to ``wait``
        seconds for the server to answer; raises :class:`CommitInDoubt` if it does not."""
        deadline = time.monotonic() + wait
        while True:
            try:
                with self.connection(what) as connection:
                    row = connection.execute("SELECT pg_xact_status(%s::xid8)", (xid,)).fetchone()
                status = row[0] if row else None
                if status == "committed":
                    return True
                if status != "in progress":
                    return False
            except StoreUnavailable:
                pass
            if time.monotonic() >= deadline:
                raise CommitInDoubt(
                    f"the connection to the {what} at {self.location} was lost while "
                    "committing and the server did not say whether it committed"
                )
            time.sleep(0.2)

    # migrations
    def migrate(self, component: str, migrations: Sequence[Sequence[str]], *, what: str) -> int:
        """Bring ``component``'s tables to version ``len(migrations)``, under the
        migration lock; the version found before. Raises :class:`SchemaError` for a
        newer schema or a failed migration, :class:`StoreUnavailable` when the server
        cannot be reached."""
        latest = len(migrations)

        def work(connection: psycopg.Connection[Any]) -> int:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS faultlens_schema "
                "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = connection.execute(
                "SELECT version FROM faultlens_schema WHERE component = %s", (component,)
            ).fetchone()
            found = int(row[0]) if row else 0
            if found > latest:
                raise SchemaError(
                    f"the {component} tables at {self.location} are at schema version {found}, "
                    f"newer than this faultlens understands ({latest}); upgrade faultlens"
                )
            for version in range(found + 1, latest + 1):
                for statement in migrations[version - 1]:
                    connection.execute(statement)  # our own DDL
            if latest > found:
                connection.execute(
                    "INSERT INTO faultlens_schema (component, version) VALUES (%s, %s) "
                    "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                    (component, latest),
                )
            return found

        try:
            return self.run(work, what)
        except StoreError:
            raise
        except self.errors.Error as exc:
            raise SchemaError(
                f"cannot use {self.location} as the {what}: {self.describe(exc)}"
            ) from exc

    def close(self) -> None:
        """Close every connection (a later use raises). Idempotent."""
        with self._opening:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=5.0)


def changed_rows(connection: psycopg.Connection[Any], sql: str, parameters: Any = ()) -> int:
    """Run one ``INSERT``, ``UPDATE`` or ``DELETE`` (without ``RETURNING``); how many rows
    it changed. Works in pipeline mode, where a cursor's ``rowcount`` is not known
    before the pipeline syncs: the statement is wrapped in a counting query."""
    row = connection.execute(
        f"WITH changed AS ({sql} RETURNING 1) SELECT count(*) FROM changed",
        parameters,
    ).fetchone()
    return int(row[0]) if row else 0


def _first_value(cursor: psycopg.Cursor[Any]) -> str | None:
    """The first value of the first row a pipelined statement answered, or None when its
    answer never came."""
    try:
        row = cursor.fetchone()
    except Exception:
        return None
    return None if row is None or row[0] is None else str(row[0])


def _link_lost(error: BaseException) -> bool:
    """Whether ``error`` may have ended the link rather than answered a statement: no
    SQLSTATE (the client lost the connection), a connection exception (class 08) or the
    server shutting down or crashing (57P01-57P03)."""
    state = getattr(error, "sqlstate", None)
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def _rollback(connection: psycopg.Connection[Any]) -> None:
    """Roll back whatever transaction ``connection`` is in (a broken one is left to the
    pool, which replaces it)."""
    if connection.broken or connection.closed:
        return
    with contextlib.suppress(Exception):
        connection.execute("ROLLBACK")


class _Errors:
    """psycopg's exception classes, imported once the backend is used."""

    def __init__(self) -> None:
        import psycopg
        import psycopg_pool
        from psycopg import errors

        self.Error = psycopg.Error
        self.OperationalError = psycopg.OperationalError
        self.InterfaceError = psycopg.InterfaceError
        self.QueryCanceled = errors.QueryCanceled
        self.DeadlockDetected = errors.DeadlockDetected
        self.SerializationFailure = errors.SerializationFailure
        self.UniqueViolation = errors.UniqueViolation
        self.PoolTimeout = psycopg_pool.PoolTimeout


def _errors() -> _Errors:
    """psycopg's exception classes; :class:`StoreError` with the install hint when psycopg
    or psycopg_pool is missing."""
    try:
        return _Errors()
    except ImportError as exc:
        raise StoreError(_INSTALL_HINT) from exc
