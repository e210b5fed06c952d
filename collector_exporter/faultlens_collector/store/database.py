"""What every backend's database object is: :class:`Database`.

A processor opens **one** database (:func:`faultlens_collector.store.open_database`)
and takes both of its stores from it: the failure groups and operator log
(:meth:`Database.group_store`, a :class:`~faultlens_collector.groups.store.GroupStore`)
and the action engine's state — halts, the alert outbox, hook jobs, fixes, audit
(:meth:`Database.action_store`, an
:class:`~faultlens_collector.actions.store.ActionStore`) and the links between groups
(:meth:`Database.link_store`, a :class:`~faultlens_collector.causes.store.LinkStore`).
The database object is the
one place that decides, for everything stored:

* **connections and transactions** — which connection a store writes through and who
  may write at a time (a store never opens a connection of its own);
* **durability** — what a committed transaction survives (``durable``: also an OS
  crash or power loss, not only a crash of the process);
* **migrations** — each component (``groups``, ``actions``, ``links``) brings its tables to its
  latest version through the database, which records the version per component and
  refuses a database written by a newer faultlens;
* **what a location means** — a file, a temporary database (``:memory:``), a server.

The SQL a store runs is the backend's (:mod:`faultlens_collector.store.sqlite`): the
group model, the writer, the listeners, the action engine and the control API see
only the store protocols, never a connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from faultlens_collector.actions.store import ActionStore
from faultlens_collector.causes.store import LinkStore
from faultlens_collector.groups.store import GroupStore


class Database(Protocol):
    """One database; each store is taken from it once. Thread-safe."""

    @property
    def location(self) -> str:
        """Where the data is, for messages (a path, ``:memory:``, a URL without its
        password)."""
        ...

    @property
    def durable(self) -> bool:
        """Whether a commit also survives an OS crash or power loss."""
        ...

    def group_store(self, *, redact: Callable[[str], str] = str) -> GroupStore:
        """The failure groups and the operator log (created and migrated on first use;
        ``redact`` cleans each group's message and stack trace before they are first
        stored). Raises :class:`~.errors.StoreError` when the database cannot hold them."""
        ...

    def action_store(self) -> ActionStore:
        """The action engine's state (created and migrated on first use). Raises
        :class:`~.errors.StoreError` when the database cannot hold it."""
        ...

    def link_store(self) -> LinkStore:
        """The links between failure groups, root causes to symptoms (created and
        migrated on first use). Raises :class:`~.errors.StoreError` when the database
        cannot hold them."""
        ...

    def close(self) -> None:
        """Close the stores taken from this database (each finishes its work first),
        then the database. Idempotent."""
        ...
