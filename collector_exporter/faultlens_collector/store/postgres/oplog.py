"""The operator log in PostgreSQL: one log for the whole fleet.

The same tables and meaning as the SQLite backend's (:mod:`..sqlite.oplog`): every
operator action, on whichever processor it was asked, is one ``operator_actions``
row written in the transaction of the change itself, with the groups it touched in
``operator_action_groups``. :func:`attach_groups` locks the groups it selects in
fingerprint order, as ingest does, so an operator's bulk change and ingest queue on
rows instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from faultlens_collector.groups.store import OperatorAction
from faultlens_collector.store.sqlite import oplog as sqlite_oplog

if TYPE_CHECKING:
    import psycopg

#: Schema statements, part of the group store's migration 1.
TABLES: Final = (
    """CREATE TABLE operator_actions (
        id BIGSERIAL PRIMARY KEY,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        peer TEXT NOT NULL,
        action TEXT NOT NULL,
        count BIGINT NOT NULL,
        detail TEXT NOT NULL)""",
    """CREATE TABLE operator_action_groups (
        action_id BIGINT NOT NULL,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (action_id, fingerprint))""",
    "CREATE INDEX operator_action_groups_by_group ON operator_action_groups (fingerprint)",
    "CREATE INDEX operator_actions_by_action ON operator_actions (action, id)",
)


def insert(db: psycopg.Connection[Any], action: OperatorAction) -> OperatorAction:
    """Write ``action`` (inside the caller's transaction); the action with its id."""
    row = db.execute(
        "INSERT INTO operator_actions (at, actor, peer, action, count, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (
            action.at,
            action.actor,
            action.peer,
            action.action,
            action.count,
            sqlite_oplog.detail_text(action),
        ),
    ).fetchone()
    return replace(action, id=int(row[0]) if row else 0)


def attach_groups(
    db: psycopg.Connection[Any], action: OperatorAction, where: str, parameters: Sequence[Any]
) -> OperatorAction:
    """Lock the groups ``where`` selects (in fingerprint order) and record them as
    touched by ``action``; the action with its ``count`` set (inside the caller's
    transaction)."""
    row = db.execute(
        "WITH locked AS (SELECT fingerprint FROM failure_groups "
        f"{where} ORDER BY fingerprint FOR UPDATE), added AS (INSERT INTO "
        "operator_action_groups SELECT %s, fingerprint FROM locked RETURNING 1) "
        "SELECT count(*) FROM added",
        [*parameters, action.id],
    ).fetchone()
    return set_count(db, action, int(row[0]) if row else 0)


def set_count(db: psycopg.Connection[Any], action: OperatorAction, count: int) -> OperatorAction:
    """Correct the number of things ``action`` touched."""
    db.execute("UPDATE operator_actions SET count = %s WHERE id = %s", (count, action.id))
    return replace(action, count=count)


def select(
    db: psycopg.Connection[Any],
    *,
    limit: int,
    fingerprint: str | None = None,
    action: str | None = None,
) -> list[OperatorAction]:
    """The newest actions first; only those that touched ``fingerprint`` / of one kind."""
    sql, parameters = sqlite_oplog.selection(
        limit=limit, fingerprint=fingerprint, action=action, mark="%s"
    )
    return [sqlite_oplog.action_of(row) for row in db.execute(sql, parameters).fetchall()]
