"""The group reads of the control API: ListGroups, GetGroup, ExportGroups.

Bad arguments (a request that does not decode; an unknown status, sort key or
severity; a page token that is malformed, too long, of another version or made for
another query — see :mod:`.paging`; an ambiguous fingerprint prefix) end with
``INVALID_ARGUMENT`` and a message naming the problem; an unknown fingerprint
with ``NOT_FOUND``. A ``since_unix_nano`` past the largest time the store holds
(2^63 - 1) selects nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import grpc
from faultlens import semconv

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions.records import HookRun
from faultlens_collector.causes.view import LinkView
from faultlens_collector.control import paging
from faultlens_collector.control.convert import to_message
from faultlens_collector.control.methods import MAX_INT64
from faultlens_collector.control.rpc import (
    MAX_FILTER_VALUES,
    at_most,
    server_stream,
    unary,
)
from faultlens_collector.groups.model import STATUSES, Group
from faultlens_collector.groups.store import (
    AmbiguousFingerprint,
    GroupNotFound,
    GroupQuery,
    GroupStore,
)

DEFAULT_PAGE: Final = 50
#: Groups an export reads the links and hook runs of at once.
_EXPORT_BATCH: Final = 256
MAX_PAGE: Final = 1000
#: Longest search text and most fingerprints a ``GroupFilter`` may carry.
MAX_TEXT: Final = 256
MAX_FILTER_FINGERPRINTS: Final = 10_000
_HANDLED: Final = {
    control_pb2.HANDLED_ANY: "",
    control_pb2.HANDLED_SOME: "some",
    control_pb2.HANDLED_ESCAPED: "escaped",
}
SORT_KEYS: Final = {
    control_pb2.SORT_KEY_UNSPECIFIED: "last_seen",
    control_pb2.SORT_KEY_LAST_SEEN: "last_seen",
    control_pb2.SORT_KEY_FIRST_SEEN: "first_seen",
    control_pb2.SORT_KEY_COUNT: "count",
    control_pb2.SORT_KEY_SEVERITY: "severity",
}


#: A group's hook runs (with their fixes' verification) that GetGroup and ExportGroups carry.
HOOK_RUNS_PER_GROUP: Final = 20

#: Each named group's newest hook runs (groups without runs left out).
HookRunsOf = Callable[[Sequence[str], int], Mapping[str, Sequence[HookRun]]]


class GroupsApi:
    """The group reads: ListGroups, GetGroup, ExportGroups. With ``links``, each group
    carries its pattern, root and links (root causes across services). With
    ``hook_runs`` (the action engine's
    :meth:`~faultlens_collector.actions.ActionEngine.hook_runs_by_group`), GetGroup and
    ExportGroups carry each group's hook runs; ListGroups never does (a page of a list
    stays one store read, plus one read of its links)."""

    def __init__(
        self,
        store: GroupStore,
        links: LinkView | None = None,
        hook_runs: HookRunsOf | None = None,
    ) -> None:
        self._store = store
        self._links = links
        self._hook_runs = hook_runs

    def _messages(self, groups: Sequence[Group], *, runs: bool = False) -> list[Any]:
        """The groups as messages with their links, and their hook runs when ``runs``."""
        causality = self._links.of(groups) if self._links is not None else {}
        hook_runs = self._runs_of(groups) if runs else {}
        return [
            to_message(
                group, causality.get(group.fingerprint), hook_runs.get(group.fingerprint, ())
            )
            for group in groups
        ]

    def _runs_of(self, groups: Sequence[Group]) -> Mapping[str, Sequence[HookRun]]:
        if self._hook_runs is None:
            return {}
        return self._hook_runs([group.fingerprint for group in groups], HOOK_RUNS_PER_GROUP)

    def methods(self) -> dict[str, grpc.RpcMethodHandler]:
        """Method name → handler, for the Control service's generic handler."""
        pb = control_pb2
        return {
            "ListGroups": unary(self.list_groups, pb.ListGroupsRequest, pb.ListGroupsResponse),
            "GetGroup": unary(self.get_group, pb.GetGroupRequest, pb.FailureGroup),
            "ExportGroups": server_stream(
                self.export_groups, pb.ExportGroupsRequest, pb.FailureGroup
            ),
        }

    def list_groups(self, request: Any, context: grpc.ServicerContext) -> Any:
        """ListGroups: one page; ``next_page_token`` is a keyset cursor
        (:mod:`~faultlens_collector.control.paging`): the next page starts right after
        this page's last group, however the list changed in between."""
        query = query_of(request.filter, context, request.sort, request.ascending)
        limit = min(request.limit or DEFAULT_PAGE, MAX_PAGE)
        after = None
        if request.page_token:
            try:
                after = paging.read_token(request.page_token, query)
            except paging.BadPageToken as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        # One more row says whether there is a next page.
        groups, total = self._store.list_groups(
            query, limit=limit + 1, after=after, count=not request.skip_total
        )
        more, groups = len(groups) > limit, groups[:limit]
        return control_pb2.ListGroupsResponse(
            groups=self._messages(groups),
            next_page_token=paging.page_token(groups[-1], query) if more else "",
            total=max(total, 0),
        )

    def get_group(self, request: Any, context: grpc.ServicerContext) -> Any:
        """GetGroup by fingerprint or unique prefix (at least 4 characters)."""
        fingerprint = request.fingerprint.strip().lower()
        if len(fingerprint) < 4:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "give a fingerprint or a prefix of at least 4 characters",
            )
        try:
            group = self._store.get_group(fingerprint)
        except GroupNotFound as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except AmbiguousFingerprint as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return self._messages([group], runs=True)[0]

    def export_groups(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """ExportGroups: every matching group, streamed (hook runs read per batch)."""
        query = query_of(request.filter, context, request.sort, request.ascending)
        for batch in batched(self._store.iter_groups(query), _EXPORT_BATCH):
            if not context.is_active():
                return
            for message in self._messages(batch, runs=True):
                if not context.is_active():
                    return
                yield message


def batched(items: Iterable[Group], size: int) -> Iterator[list[Group]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    batch: list[Group] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def query_of(
    filter_: Any, context: grpc.ServicerContext, sort: int = 0, ascending: bool = False
) -> GroupQuery:
    """A ``GroupFilter`` (with a sort) as a :class:`GroupQuery`; aborts the call with
    ``INVALID_ARGUMENT`` for an unknown status, severity or sort key, or more than
    :data:`~.rpc.MAX_FILTER_VALUES` values in a field. A ``since_unix_nano`` past the
    latest time a store holds selects what was seen at that time."""
    for field_name in ("statuses", "services", "categories", "severities", "tags"):
        at_most(
            context,
            len(getattr(filter_, field_name)),
            MAX_FILTER_VALUES,
            f"the number of {field_name} in a filter",
        )
    for name, values, allowed in (
        ("status", filter_.statuses, STATUSES),
        ("severity", filter_.severities, semconv.SEVERITIES),
    ):
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown {name} {', '.join(map(repr, unknown[:5]))[:200]}; use one of "
                f"{', '.join(allowed)}",
            )
    if sort not in SORT_KEYS:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown sort key {sort}")
    if filter_.handled not in _HANDLED:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown handled value {filter_.handled}")
    if len(filter_.text) > MAX_TEXT:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"a search text is at most {MAX_TEXT} characters"
        )
    at_most(
        context,
        len(filter_.exception_types),
        MAX_FILTER_VALUES,
        "the number of exception_types in a filter",
    )
    at_most(
        context,
        len(filter_.fingerprints),
        MAX_FILTER_FINGERPRINTS,
        "the number of fingerprints in a filter",
    )
    return GroupQuery(
        statuses=tuple(filter_.statuses),
        services=tuple(filter_.services),
        categories=tuple(filter_.categories),
        severities=tuple(filter_.severities),
        since_unix_nano=min(filter_.since_unix_nano, MAX_INT64),
        sort=SORT_KEYS[sort],
        ascending=ascending,
        tags=tuple(filter_.tags),
        fingerprints=tuple(filter_.fingerprints) or None,
        text=filter_.text,
        exception_types=tuple(filter_.exception_types),
        handled=_HANDLED[filter_.handled],
        first_seen_since=min(filter_.first_seen_since_unix_nano, MAX_INT64),
        regressed_since=min(filter_.regressed_since_unix_nano, MAX_INT64),
    )
