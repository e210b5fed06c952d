"""The database seam: one database object per processor, every store taken from it.

::

    database = open_database("faultlens.db", durable=True)
    groups = database.group_store(redact=redactor.redact)
    actions = database.action_store()
    ...
    database.close()

:func:`open_database` reads a store location the way ``faultlens serve --store`` takes
it: a SQLite file path, or ``:memory:`` for a throwaway database. What a
:class:`~.database.Database` decides, and what stays the stores' business, is in
:mod:`.database`; the SQLite backend is :mod:`.sqlite`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from faultlens_collector.store.database import Database
from faultlens_collector.store.errors import SchemaError, StoreError
from faultlens_collector.store.postgres.server import is_postgres_url
from faultlens_collector.store.sqlite.database import MEMORY, SQLiteDatabase

__all__ = [
    "MEMORY",
    "Database",
    "SchemaError",
    "StoreError",
    "open_database",
]

_URL: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_database(location: str | Path, *, durable: bool = False) -> Database:
    """The database at ``location``: a SQLite file (created if missing), ``:memory:``,
    or a PostgreSQL URL (``postgresql://`` or ``postgres://``).

    Nothing is read or written before a store is taken from it. Raises
    :class:`StoreError` for a location no backend takes (another URL), for a durable
    ``:memory:`` database (it keeps nothing), and for a PostgreSQL URL when the
    ``postgres`` extra is not installed (the message says how to install it).
    """
    text = str(location)
    if is_postgres_url(text):
        from faultlens_collector.store.postgres.database import PostgresDatabase

        return PostgresDatabase(text, durable=durable)
    if text == MEMORY:
        if durable:
            raise StoreError(f"a {MEMORY} store keeps nothing: it cannot be durable")
        return SQLiteDatabase.temporary_database()
    url = _URL.match(text)
    if url is not None:
        raise StoreError(
            f"cannot use {url.group(0)}… as the failure store: give the path of a SQLite "
            f"file, {MEMORY}, or a postgresql:// URL"
        )
    return SQLiteDatabase(location, durable=durable)
