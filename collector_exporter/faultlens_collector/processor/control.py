"""The ``faultlens.v1.Control`` gRPC service (proto/faultlens/v1/control.proto).

Served next to OTLP on the processor's port; the ``faultlens`` command line is
its client (:mod:`faultlens_collector.client`). Service wiring is written here
by hand over the generated messages, so no grpcio-tools version is baked in.
This module serves the reads; bulk triage is in :mod:`.triage`, halts, streams
and hook records in :mod:`.engine_api`.
Bad arguments (a request that does not decode; an unknown status, sort key or
severity; a malformed page token; an ambiguous fingerprint prefix) end with
``INVALID_ARGUMENT`` and a message naming the problem; an unknown fingerprint
with ``NOT_FOUND``. A ``since_unix_nano`` past the largest time the store holds
(2^63 - 1) selects nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import grpc
from faultlens import semconv

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions import ActionEngine
from faultlens_collector.groups.model import STATUSES, Dismissal, Group
from faultlens_collector.groups.store import (
    AmbiguousFingerprint,
    GroupNotFound,
    GroupQuery,
    GroupStore,
)
from faultlens_collector.processor.decoding import decoding_handler

if TYPE_CHECKING:
    from faultlens_collector.processor.watch import GroupWatch

SERVICE: Final = "faultlens.v1.Control"
Handler = Callable[[Any, grpc.ServicerContext], Any]
DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 1000
#: The largest time (Unix ns) and offset the SQLite store can hold.
MAX_INT64: Final = (1 << 63) - 1
_PAGE_TOKEN: Final = re.compile(r"[0-9]{1,18}")
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


def method(name: str) -> str:
    """The full gRPC method path of a Control RPC."""
    return f"/{SERVICE}/{name}"


def unary(handler: Handler, request_type: Any, reply_type: Any) -> grpc.RpcMethodHandler:
    """A unary RPC handler over generated message types."""
    return grpc.unary_unary_rpc_method_handler(
        handler,
        request_deserializer=request_type.FromString,
        response_serializer=reply_type.SerializeToString,
    )


def server_stream(handler: Handler, request_type: Any, item_type: Any) -> grpc.RpcMethodHandler:
    """A server-streaming RPC handler over generated message types."""
    return grpc.unary_stream_rpc_method_handler(
        handler,
        request_deserializer=request_type.FromString,
        response_serializer=item_type.SerializeToString,
    )


class ControlService:
    """The whole ``faultlens.v1.Control`` service for one store (and engine)."""

    def __init__(
        self,
        store: GroupStore,
        engine: ActionEngine | None = None,
        *,
        max_streams: int = 256,
        watch: GroupWatch | None = None,
    ) -> None:
        from faultlens_collector.processor.engine_api import EngineApi, Streams
        from faultlens_collector.processor.overview import OverviewApi
        from faultlens_collector.processor.triage import Triage
        from faultlens_collector.processor.watch import GroupWatch

        self._store = store
        self.streams = Streams(max_streams)
        #: Feeds ``WatchGroups``; the processor hands it every commit.
        self.watch = watch or GroupWatch()
        self._more: dict[str, grpc.RpcMethodHandler] = {}
        self._more.update(OverviewApi(store, self.watch, self.streams, engine).methods())
        if engine is not None:
            self._more.update(Triage(store, engine, on_action=self.watch.on_action).methods())
            self._more.update(EngineApi(engine, store, self.streams).methods())

    def close_streams(self) -> None:
        """End every open stream and refuse new ones (the processor is stopping)."""
        self.streams.close_all()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """The generic handler serving every Control RPC."""
        pb = control_pb2
        methods = {
            "ListGroups": unary(self.list_groups, pb.ListGroupsRequest, pb.ListGroupsResponse),
            "GetGroup": unary(self.get_group, pb.GetGroupRequest, pb.FailureGroup),
            "ExportGroups": server_stream(
                self.export_groups, pb.ExportGroupsRequest, pb.FailureGroup
            ),
            **self._more,
        }
        # Requests are decoded in the handlers: a malformed one is INVALID_ARGUMENT.
        return [
            grpc.method_handlers_generic_handler(
                SERVICE, {name: decoding_handler(handler) for name, handler in methods.items()}
            )
        ]

    def list_groups(self, request: Any, context: grpc.ServicerContext) -> Any:
        """ListGroups: one page; the token is the offset of the next page."""
        query = query_of(request.filter, context, request.sort, request.ascending)
        limit = min(request.limit or DEFAULT_PAGE, MAX_PAGE)
        offset = 0
        if request.page_token:
            if not _PAGE_TOKEN.fullmatch(request.page_token):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed page_token")
            offset = int(request.page_token)
        if request.skip_total:  # one more row says whether there is a next page
            groups, _ = self._store.list_groups(query, limit=limit + 1, offset=offset, count=False)
            more, groups, total = len(groups) > limit, groups[:limit], 0
        else:
            groups, total = self._store.list_groups(query, limit=limit, offset=offset)
            more = offset + len(groups) < total
        return control_pb2.ListGroupsResponse(
            groups=[to_message(group) for group in groups],
            next_page_token=str(offset + len(groups)) if more else "",
            total=total,
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
            return to_message(self._store.get_group(fingerprint))
        except GroupNotFound as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except AmbiguousFingerprint as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def export_groups(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """ExportGroups: every matching group, streamed."""
        query = query_of(request.filter, context, request.sort, request.ascending)
        for group in self._store.iter_groups(query):
            if not context.is_active():
                return
            yield to_message(group)


def query_of(
    filter_: Any, context: grpc.ServicerContext, sort: int = 0, ascending: bool = False
) -> GroupQuery:
    """A ``GroupFilter`` (with a sort) as a :class:`GroupQuery`; aborts the call with
    ``INVALID_ARGUMENT`` for an unknown status, severity or sort key."""
    for name, values, allowed in (
        ("status", filter_.statuses, STATUSES),
        ("severity", filter_.severities, semconv.SEVERITIES),
    ):
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown {name} {', '.join(unknown)}; use one of {', '.join(allowed)}",
            )
    if sort not in SORT_KEYS:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown sort key {sort}")
    if filter_.handled not in _HANDLED:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown handled value {filter_.handled}")
    if len(filter_.text) > MAX_TEXT:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"a search text is at most {MAX_TEXT} characters"
        )
    if len(filter_.fingerprints) > MAX_FILTER_FINGERPRINTS:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"a filter names at most {MAX_FILTER_FINGERPRINTS} fingerprints",
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


def to_message(group: Group) -> Any:
    """A :class:`Group` as a ``faultlens.v1.FailureGroup`` message."""
    return control_pb2.FailureGroup(
        fingerprint=group.fingerprint,
        exception_type=group.exception_type,
        message=group.message,
        stacktrace=group.stacktrace,
        category=group.category,
        severity=group.severity,
        status=group.status,
        count=group.count,
        first_seen_unix_nano=group.first_seen,
        last_seen_unix_nano=group.last_seen,
        service_counts=group.service_counts,
        span_names=group.span_names,
        samples=[
            control_pb2.Sample(
                trace_id=sample.trace_id,
                span_id=sample.span_id,
                service=sample.service,
                time_unix_nano=sample.time_unix_nano,
            )
            for sample in group.samples
        ],
        handled_count=group.handled_count,
        tags=group.tags,
        dismissal=None if group.dismissal is None else dismissal_message(group.dismissal),
        category_locked=group.category_locked,
        severity_locked=group.severity_locked,
        regressed_unix_nano=group.regressed_at,
    )


def dismissal_message(dismissal: Dismissal) -> Any:
    """A group's :class:`Dismissal` as a ``Dismissal`` message."""
    return control_pb2.Dismissal(
        reason=dismissal.reason,
        by=dismissal.by,
        dismissed_unix_nano=dismissal.at,
        until_unix_nano=dismissal.until,
        reopen_above_per_hour=dismissal.max_per_hour,
    )
