"""What a group store does, whatever the backend: :class:`GroupStore`.

A group store keeps the failure groups and the operator log. The processor's writer
merges occurrences into groups with :meth:`GroupStore.apply` (one transaction per
call; nothing is acknowledged to a client before it committed); the control API
reads groups with :class:`GroupQuery` and changes them in bulk with
:class:`GroupUpdate`, each change logged as an :class:`OperatorAction` in the same
transaction. A backend implements it (:mod:`faultlens_collector.store.sqlite.groups`);
a :class:`~faultlens_collector.store.database.Database` hands it out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from faultlens import semconv

from faultlens_collector.groups.model import Change, Dismissal, Group, Occurrence

#: The columns each sort key orders by, most significant first (``severity``: by
#: severity rank, then by ``last_seen``); ties are broken by the fingerprint, so every
#: group has one place in a sorted list and pages are stable.
SORT_COLUMNS: Final = {
    "last_seen": ("last_seen",),
    "first_seen": ("first_seen",),
    "count": ("count",),
    "severity": ("severity_rank", "last_seen"),
}
#: What groups can be sorted by.
SORT_KEYS: Final = tuple(SORT_COLUMNS)


@dataclass(frozen=True, slots=True)
class GroupKey:
    """A group's place in a list sorted by one sort key: the values of the sort's
    :data:`SORT_COLUMNS` and the fingerprint (the tiebreaker). A keyset page starts
    right after it (:meth:`GroupStore.list_groups`'s ``after``), wherever the groups
    before it moved since."""

    values: tuple[int, ...]
    fingerprint: str


def group_key(group: Group, sort: str) -> GroupKey:
    """Where ``group`` stands in a list sorted by ``sort`` (one of :data:`SORT_KEYS`)."""
    values = {
        "last_seen": group.last_seen,
        "first_seen": group.first_seen,
        "count": group.count,
        "severity_rank": semconv.SEVERITY_RANK.get(group.severity, -1),
    }
    return GroupKey(tuple(values[column] for column in SORT_COLUMNS[sort]), group.fingerprint)


@dataclass(frozen=True, slots=True)
class GroupQuery:
    """Which groups to read, in which order. Empty tuples mean "any".

    ``tags`` selects groups carrying any of them; ``fingerprints`` (None: any)
    exactly these groups; ``action_id`` the groups an operator action touched;
    ``text`` groups whose fingerprint, exception type or message contains it
    (case-insensitive for ASCII letters); ``exception_types`` groups of these types;
    ``handled`` ``some``: groups with a handled occurrence, ``escaped``: with an
    escaped one (empty: any); ``first_seen_since`` / ``regressed_since`` (Unix ns, 0:
    any) groups first seen / last regressed at or after that time.
    """

    statuses: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    since_unix_nano: int = 0
    sort: str = "last_seen"
    ascending: bool = False
    tags: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] | None = None
    action_id: int = 0
    text: str = ""
    exception_types: tuple[str, ...] = ()
    handled: str = ""
    first_seen_since: int = 0
    regressed_since: int = 0

    def __post_init__(self) -> None:
        if self.sort not in SORT_KEYS:
            raise ValueError(f"cannot sort by {self.sort!r}; use one of {sorted(SORT_KEYS)}")

    @property
    def selects_everything(self) -> bool:
        """No criterion at all: every group matches."""
        return not (
            self.statuses
            or self.services
            or self.categories
            or self.severities
            or self.since_unix_nano
            or self.tags
            or self.fingerprints is not None
            or self.action_id
            or self.text
            or self.exception_types
            or self.handled
            or self.first_seen_since
            or self.regressed_since
        )


@dataclass(frozen=True, slots=True)
class GroupUpdate:
    """What a bulk operation sets on every selected group; None or empty: unchanged.

    ``status`` other than ``dismissed`` clears a dismissal; ``dismissed`` needs
    ``dismissal``. Setting ``category`` or ``severity`` locks it: occurrences no
    longer change it. Tags are added and removed (kept sorted, each once).
    """

    status: str | None = None
    dismissal: Dismissal | None = None
    category: str | None = None
    severity: str | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status == "dismissed" and self.dismissal is None:
            raise ValueError("a dismissal needs its Dismissal record")


class CommitInDoubt(RuntimeError):
    """Raised by :meth:`GroupStore.apply` (or any store write) when the link to a database
    server was lost while the transaction committed and the server could not say in time
    whether it did: the write may or may not have been kept. Never retried by the caller
    (that could keep it twice)."""


#: What series can sum by besides per group (``""``: one series, ``total``).
SERIES_DIMENSIONS: Final = ("fingerprint", "category", "severity", "status", "service", "")


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """Occurrences over hours ``[start_hour, end_hour)`` (Unix ns // ``HOUR_NANOS``) in
    buckets of ``bucket_hours``: one series per group of ``fingerprints``, or else over
    the groups ``groups`` selects (None: all) summed by ``group_by`` (one of
    :data:`SERIES_DIMENSIONS`; a ``services`` criterion also narrows the ``service``
    series), the ``limit`` largest totals first."""

    start_hour: int
    end_hour: int
    bucket_hours: int = 1
    group_by: str = ""
    fingerprints: tuple[str, ...] = ()
    groups: GroupQuery | None = None
    limit: int = 100

    @property
    def buckets(self) -> int:
        return (self.end_hour - self.start_hour) // self.bucket_hours


@dataclass(frozen=True, slots=True)
class SeriesResult:
    """(key, counts per bucket, total) per series, largest total first (ties by key);
    ``more``: series left out by the limit."""

    series: list[tuple[str, list[int], int]]
    more: int


class GroupNotFound(LookupError):
    """No group has the fingerprint (or prefix)."""


class AmbiguousFingerprint(ValueError):
    """A fingerprint prefix matches more than one group."""


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """One operator action. ``count`` is how many groups (or halts) it touched;
    ``detail`` holds its arguments (reason, category, hook, the filter, …)."""

    action: str
    actor: str
    peer: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    count: int = 0
    at: int = field(default_factory=time.time_ns)
    id: int = 0


class GroupStore(Protocol):
    """Failure groups and the operator log in one database. Thread-safe; reads never
    wait long for a write in progress."""

    @property
    def group_count(self) -> int:
        """Groups in the store (kept current by :meth:`apply`)."""
        ...

    def apply(self, occurrences: Sequence[Occurrence]) -> list[Change]:
        """Merge ``occurrences`` into their groups in one transaction; one
        :class:`~faultlens_collector.groups.model.Change` per group. Raises (and
        changes nothing) when the transaction cannot commit; raises
        :class:`CommitInDoubt` when it may or may not have committed."""
        ...

    def expire_dismissals(self, now_unix_nano: int | None = None) -> int:
        """Reopen the dismissed groups whose dismissal's end time passed; how many."""
        ...

    def update_groups(
        self, query: GroupQuery, update: GroupUpdate, action: OperatorAction
    ) -> OperatorAction:
        """Apply ``update`` to every group ``query`` selects and log ``action`` with the
        groups it touched, in one transaction; the logged action (its ``count`` is the
        number of groups, its ``id`` set)."""
        ...

    def log_action(self, action: OperatorAction) -> OperatorAction:
        """Log an operator action that touched no group (a halt, a resume)."""
        ...

    def set_action_count(self, action: OperatorAction, count: int) -> OperatorAction:
        """Correct how many things a logged action touched."""
        ...

    def operator_actions(
        self, *, limit: int = 100, fingerprint: str | None = None, action: str | None = None
    ) -> list[OperatorAction]:
        """Logged operator actions, newest first; only those that touched
        ``fingerprint`` / of one kind."""
        ...

    def count_groups(self, query: GroupQuery) -> int:
        """How many groups ``query`` selects."""
        ...

    def missing(self, fingerprints: Sequence[str]) -> list[str]:
        """Those of ``fingerprints`` that name no group (in the order given)."""
        ...

    def list_groups(
        self,
        query: GroupQuery,
        *,
        limit: int,
        offset: int = 0,
        after: GroupKey | None = None,
        count: bool = True,
    ) -> tuple[list[Group], int]:
        """One page of groups matching ``query`` and the number of all that match (-1
        without ``count``). ``after`` (keyset paging): only the groups sorted after that
        place, so a walk page by page neither repeats nor skips a group that did not
        change while the list moved; ``offset`` skips that many rows first (a page of a
        list that changes between reads may then repeat or skip groups). Raises
        ``ValueError`` when ``after`` has not as many values as the sort has columns."""
        ...

    def series(self, query: SeriesQuery) -> SeriesResult:
        """Occurrences over time, from the store's hourly counts."""
        ...

    def prune_hours(self, now_unix_nano: int | None = None) -> int:
        """Forget hourly counts older than the retention; how many were dropped."""
        ...

    def action_fingerprints(self, action_id: int, limit: int) -> list[str]:
        """The groups an operator action touched, in fingerprint order (at most ``limit``)."""
        ...

    def iter_groups(self, query: GroupQuery, *, chunk: int = 500) -> Iterator[Group]:
        """Every group matching ``query``, in order."""
        ...

    def get_group(self, fingerprint: str) -> Group:
        """The group with this fingerprint, or the only one whose fingerprint starts
        with it. Raises :class:`GroupNotFound` or :class:`AmbiguousFingerprint`."""
        ...

    def probe(self) -> None:
        """Commit a small write of its own (and undo it in the same commit): whether the
        store can commit new data now. Raises when it cannot."""
        ...

    def remove_groups(
        self, fingerprints: Sequence[str], action: OperatorAction
    ) -> tuple[int, OperatorAction]:
        """Delete these groups (and their mentions in the operator log) and log
        ``action`` in one transaction; how many were removed, and the logged action."""
        ...

    def close(self) -> None:
        """Finish pending work (the database closes the connections)."""
        ...
