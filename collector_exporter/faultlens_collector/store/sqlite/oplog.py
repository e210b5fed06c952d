"""The operator log: who did what to which failure groups (and halts), and when.

Every operator action through the control API — dismiss, categorize, resolve,
reopen, fix, halt, resume — is one :class:`OperatorAction` row in
``operator_actions``, written in the same transaction as the change itself; the
groups it touched are listed in ``operator_action_groups``, so "who dismissed
this group?" is one indexed query. ``actor`` is what the client declared
(``--actor`` / ``FAULTLENS_ACTOR``), ``peer`` the network address the processor
saw; neither is authenticated beyond the bearer token every call carries.

The tables belong to the ``groups`` schema (see :mod:`.groups`, migration 2);
:class:`~faultlens_collector.groups.store.OperatorAction` is the record, whatever the
backend.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from faultlens_collector.groups.store import OperatorAction

#: Schema statements, applied by the group store's migration 2.
TABLES: Final = (
    """CREATE TABLE operator_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        peer TEXT NOT NULL,
        action TEXT NOT NULL,
        count INTEGER NOT NULL,
        detail TEXT NOT NULL)""",
    """CREATE TABLE operator_action_groups (
        action_id INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (action_id, fingerprint)) WITHOUT ROWID""",
    "CREATE INDEX operator_action_groups_by_group ON operator_action_groups (fingerprint)",
)


def insert(db: sqlite3.Connection, action: OperatorAction) -> OperatorAction:
    """Write ``action`` (inside the caller's transaction); the action with its id."""
    cursor = db.execute(
        "INSERT INTO operator_actions (at, actor, peer, action, count, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            action.at,
            action.actor,
            action.peer,
            action.action,
            action.count,
            detail_text(action),
        ),
    )
    return replace(action, id=int(cursor.lastrowid or 0))


def attach_groups(
    db: sqlite3.Connection, action: OperatorAction, where: str, parameters: Sequence[Any]
) -> OperatorAction:
    """Record the groups ``where`` selects as touched by ``action``; the action with
    its ``count`` set (inside the caller's transaction)."""
    count = db.execute(
        f"INSERT INTO operator_action_groups SELECT ?, fingerprint FROM failure_groups {where}",
        [action.id, *parameters],
    ).rowcount
    db.execute("UPDATE operator_actions SET count = ? WHERE id = ?", (count, action.id))
    return replace(action, count=count)


def set_count(db: sqlite3.Connection, action: OperatorAction, count: int) -> OperatorAction:
    """Correct the number of things ``action`` touched."""
    db.execute("UPDATE operator_actions SET count = ? WHERE id = ?", (count, action.id))
    return replace(action, count=count)


def select(
    db: sqlite3.Connection,
    *,
    limit: int,
    fingerprint: str | None = None,
    action: str | None = None,
) -> list[OperatorAction]:
    """The newest actions first; only those that touched ``fingerprint`` / of one kind."""
    sql, parameters = selection(limit=limit, fingerprint=fingerprint, action=action)
    return [action_of(row) for row in db.execute(sql, parameters).fetchall()]


def selection(
    *, limit: int, fingerprint: str | None = None, action: str | None = None, mark: str = "?"
) -> tuple[str, list[Any]]:
    """The query of :func:`select` and its parameters, with ``mark`` as the placeholder
    (the PostgreSQL backend reads the same table with ``%s``)."""
    clauses: list[str] = []
    parameters: list[Any] = []
    if fingerprint:
        clauses.append(
            f"id IN (SELECT action_id FROM operator_action_groups WHERE fingerprint = {mark})"
        )
        parameters.append(fingerprint)
    if action:
        clauses.append(f"action = {mark}")
        parameters.append(action)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = (
        "SELECT id, at, actor, peer, action, count, detail FROM operator_actions "
        f"{where} ORDER BY id DESC LIMIT {mark}"
    )
    return sql, [*parameters, limit]


def action_of(row: Sequence[Any]) -> OperatorAction:
    """An ``operator_actions`` row (as :func:`selection` reads it) as its record."""
    return OperatorAction(
        id=row[0],
        at=row[1],
        actor=row[2],
        peer=row[3],
        action=row[4],
        count=row[5],
        detail=json.loads(row[6]),
    )


def detail_text(action: OperatorAction) -> str:
    """The stored form of an action's ``detail``."""
    return json.dumps(dict(action.detail), separators=(",", ":"), sort_keys=True)
