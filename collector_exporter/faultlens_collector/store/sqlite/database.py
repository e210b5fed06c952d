"""The SQLite backend's :class:`~faultlens_collector.store.database.Database`.

One file holds everything — groups, the operator log, the action engine's tables, the
links between groups — and every store of the database writes through the file's one
writer connection (:class:`~.connection.SQLiteFile`): one place decides durability and
migrations for all of them.

``:memory:`` is a throwaway database: a file in a temporary directory of its own
(``$TMPDIR``), written with ``synchronous=OFF`` and removed when the database closes.
Nothing survives the processor; everything works as with a file (readers need a file
to open: SQLite's own in-memory databases are private to one connection). It cannot
be durable.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from faultlens_collector.store.errors import StoreError
from faultlens_collector.store.sqlite.actions import SQLiteActionStore
from faultlens_collector.store.sqlite.connection import DEFAULT_CACHE_KIB, SQLiteFile
from faultlens_collector.store.sqlite.groups import SQLiteGroupStore
from faultlens_collector.store.sqlite.links import SQLiteLinkStore

#: The location that asks for a temporary database.
MEMORY: Final = ":memory:"


class SQLiteDatabase(SQLiteFile):
    """The SQLite file at ``path`` and the stores taken from it (see the module
    docstring). Nothing is opened before the first store is taken."""

    def __init__(
        self,
        path: str | Path,
        *,
        durable: bool = False,
        cache_kib: int = DEFAULT_CACHE_KIB,
        temporary: str | None = None,
    ) -> None:
        super().__init__(path, durable=durable, cache_kib=cache_kib, temporary=temporary)
        self._stores_lock = threading.Lock()
        self._groups: SQLiteGroupStore | None = None
        self._actions: SQLiteActionStore | None = None
        self._links: SQLiteLinkStore | None = None

    @classmethod
    def temporary_database(cls, *, cache_kib: int = DEFAULT_CACHE_KIB) -> SQLiteDatabase:
        """A throwaway database (``:memory:``): removed when it closes."""
        directory = tempfile.mkdtemp(prefix="faultlens-store-")
        return cls(
            os.path.join(directory, "faultlens.db"), cache_kib=cache_kib, temporary=directory
        )

    @property
    def location(self) -> str:
        """The file's path, or ``:memory:`` for a temporary database."""
        return MEMORY if self.temporary is not None else self.path

    def group_store(
        self, *, redact: Callable[[str], str] = str, hot_groups: int = 2048
    ) -> SQLiteGroupStore:
        """The groups and operator log of this file (see :class:`SQLiteGroupStore`);
        taken once."""
        with self._stores_lock:
            if self._groups is not None:
                raise StoreError(f"the group store of {self.location} is taken already")
            self._groups = SQLiteGroupStore(self, redact=redact, hot_groups=hot_groups)
            return self._groups

    def action_store(self, *, max_audit_records: int = 100_000) -> SQLiteActionStore:
        """The action engine's tables in this file (see :class:`SQLiteActionStore`);
        taken once."""
        with self._stores_lock:
            if self._actions is not None:
                raise StoreError(f"the action store of {self.location} is taken already")
            self._actions = SQLiteActionStore(self, max_audit_records=max_audit_records)
            return self._actions

    def link_store(self) -> SQLiteLinkStore:
        """The links between groups in this file (see :class:`SQLiteLinkStore`); taken
        once."""
        with self._stores_lock:
            if self._links is not None:
                raise StoreError(f"the link store of {self.location} is taken already")
            self._links = SQLiteLinkStore(self)
            return self._links

    def close(self) -> None:
        """Close the stores (the group store folds its log), then the file (a temporary
        one is removed). Idempotent."""
        with self._stores_lock:
            stores = [
                store for store in (self._groups, self._actions, self._links) if store is not None
            ]
        for store in stores:
            store.close()
        super().close()
