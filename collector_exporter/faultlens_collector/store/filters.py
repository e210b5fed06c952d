"""The SQL ``WHERE`` clauses of the stores' queries, one builder for both backends.

:class:`GroupFilters` builds a :class:`~faultlens_collector.groups.store.GroupQuery`'s,
:func:`audit_where` the action audit's.

The filters mean the same in SQLite and PostgreSQL and are built here once
(:meth:`GroupFilters.where`): statuses, categories, severities and exception types
(any of), services and tags (any of), the three "since" times, the text search
(``LIKE`` over fingerprint, exception type and message, the text taken literally),
handled, a fingerprint list and an operator action's groups, all ``AND``-ed. What
differs is spelled by a subclass: the parameter mark, how "any of a list" is
written, and how the JSON columns (``service_counts``, ``tags``) are searched.

A clause only ever holds parameter marks: every value the query carries goes in
the parameter list, never in the SQL text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Final

from faultlens_collector.groups.store import GroupQuery

#: ``GroupQuery.handled`` values and their conditions.
HANDLED: Final = {"some": "handled_count > 0", "escaped": "handled_count < count"}

Clause = tuple[str, list[Any]]


def like_escape(text: str) -> str:
    """``text`` as a literal inside a ``LIKE ... ESCAPE '\\'`` pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class GroupFilters(ABC):
    """Builds the ``WHERE`` clause of a query; subclasses spell the backend's SQL."""

    #: The backend's parameter mark.
    mark: str = "?"

    def where(self, query: GroupQuery) -> Clause:
        """The clause (``""`` when nothing filters) and its parameters, in order."""
        clauses: list[str] = []
        parameters: list[Any] = []

        def add(clause: Clause) -> None:
            clauses.append(clause[0])
            parameters.extend(clause[1])

        mark = self.mark
        for column, values in (
            (self.status_column(query), query.statuses),
            ("category", query.categories),
            ("severity", query.severities),
            ("exception_type", query.exception_types),
        ):
            if values:
                add(self.any_of(column, values))
        if query.services:
            add(self.any_service(query.services))
        for column, since in (
            ("last_seen", query.since_unix_nano),
            ("first_seen", query.first_seen_since),
            ("regressed_at", query.regressed_since),
        ):
            if since:
                add((f"{column} >= {mark}", [since]))
        if query.text:
            pattern = "%" + like_escape(query.text) + "%"
            add(
                (
                    f"(fingerprint LIKE {mark} ESCAPE '\\' OR exception_type LIKE {mark} "
                    f"ESCAPE '\\' OR message LIKE {mark} ESCAPE '\\')",
                    [pattern, pattern, pattern],
                )
            )
        if query.handled:
            add((HANDLED[query.handled], []))
        if query.tags:
            add(self.any_tag(query.tags))
        if query.fingerprints is not None:
            add(self.fingerprint_in(query.fingerprints))
        if query.action_id:
            add(
                (
                    "fingerprint IN (SELECT fingerprint FROM operator_action_groups "
                    f"WHERE action_id = {mark})",
                    [query.action_id],
                )
            )
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), parameters

    # -- what a backend spells its own way ------------------------------------

    def status_column(self, query: GroupQuery) -> str:
        """The status column as the clause names it (a backend may add an index hint)."""
        return "status"

    @abstractmethod
    def any_of(self, column: str, values: Sequence[Any]) -> Clause:
        """``column`` equals one of ``values`` (never empty)."""

    @abstractmethod
    def any_service(self, services: Sequence[str]) -> Clause:
        """The group was seen from one of ``services`` (keys of ``service_counts``)."""

    @abstractmethod
    def any_tag(self, tags: Sequence[str]) -> Clause:
        """The group has one of ``tags`` (the ``tags`` JSON array)."""

    @abstractmethod
    def fingerprint_in(self, fingerprints: Sequence[str]) -> Clause:
        """The group's fingerprint is one of ``fingerprints`` (possibly none)."""


def audit_where(mark: str, *, fingerprint: str | None, hook: str | None) -> Clause:
    """The action audit's filter: one group's records, one hook's, or both (``AND``);
    ``mark`` is the backend's parameter mark."""
    clauses: list[str] = []
    parameters: list[Any] = []
    for column, value in (("fingerprint", fingerprint), ("hook", hook)):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            parameters.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), parameters
