"""The PostgreSQL backend's :class:`~faultlens_collector.store.database.Database`.

One database holds everything — groups, the operator log, the action engine's
tables, the links between groups — for any number of processors: each processor opens its own
:class:`PostgresDatabase` on the same URL, and the stores taken from it decide in the
database what must be decided once for the fleet (see :mod:`.groups`,
:mod:`.actions` and :mod:`.links`). The stores share the database's connection pool
(:class:`~.server.PostgresServer`): one place decides connections, durability and
migrations for all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from faultlens_collector.store.errors import StoreError
from faultlens_collector.store.postgres.actions import PostgresActionStore
from faultlens_collector.store.postgres.groups import PostgresGroupStore
from faultlens_collector.store.postgres.links import PostgresLinkStore
from faultlens_collector.store.postgres.server import PostgresServer

if TYPE_CHECKING:
    from faultlens_collector.store.database import Database


class PostgresDatabase(PostgresServer):
    """The PostgreSQL database at ``url`` and the stores taken from it. Nothing is
    connected before the first store is taken; ``server_options`` tune the pool (see
    :class:`~.server.PostgresServer`)."""

    def __init__(self, url: str, *, durable: bool = False, **server_options: Any) -> None:
        super().__init__(url, durable=durable, **server_options)
        self._stores_lock = threading.Lock()
        self._groups: PostgresGroupStore | None = None
        self._actions: PostgresActionStore | None = None
        self._links: PostgresLinkStore | None = None

    def group_store(self, *, redact: Callable[[str], str] = str) -> PostgresGroupStore:
        """The groups and operator log of the fleet (see :class:`PostgresGroupStore`);
        taken once."""
        with self._stores_lock:
            if self._groups is not None:
                raise StoreError(f"the group store of {self.location} is taken already")
            self._groups = PostgresGroupStore(self, redact=redact)
            return self._groups

    def action_store(
        self,
        *,
        max_audit_records: int = 100_000,
        alert_lease: float = 30.0,
        job_lease: float = 60.0,
    ) -> PostgresActionStore:
        """The action engine's tables, shared with the fleet (see
        :class:`PostgresActionStore`); taken once."""
        with self._stores_lock:
            if self._actions is not None:
                raise StoreError(f"the action store of {self.location} is taken already")
            self._actions = PostgresActionStore(
                self,
                max_audit_records=max_audit_records,
                alert_lease=alert_lease,
                job_lease=job_lease,
            )
            return self._actions

    def link_store(self) -> PostgresLinkStore:
        """The links between groups, shared with the fleet (see
        :class:`PostgresLinkStore`); taken once."""
        with self._stores_lock:
            if self._links is not None:
                raise StoreError(f"the link store of {self.location} is taken already")
            self._links = PostgresLinkStore(self)
            return self._links

    def close(self) -> None:
        """Close the stores (the action store gives back its leases), then the pool.
        Idempotent."""
        with self._stores_lock:
            stores = [
                store for store in (self._groups, self._actions, self._links) if store is not None
            ]
        for store in stores:
            store.close()
        super().close()


if TYPE_CHECKING:  # mypy checks the backend against the seam's protocols
    _DATABASE: type[Database] = PostgresDatabase
