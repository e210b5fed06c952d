"""The control RPCs an overview (the web console's dashboard and live list) needs.

* ``GetSeries`` — occurrences over time from the store's hourly counts
  (:mod:`faultlens_collector.store.sqlite.history` in SQLite): per group (the list's
  sparklines, a group's chart) or summed by category, severity, status or service (the
  dashboard), the largest first.
* ``WatchGroups`` — which groups change as it happens (:mod:`.watch`).
* ``ListAlerts`` — the most recent alerts the engine raised since it started (the
  alert stream only has what comes next).

A window is whole buckets: ``start`` is aligned down and ``end`` up to a multiple of
the bucket width; more than :data:`MAX_BUCKETS` buckets, a bucket that is not
a whole number of hours, an unknown ``group_by`` or a window that ends before it starts
are ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Final

import grpc

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions import ActionEngine
from faultlens_collector.control.actions import alert_kinds
from faultlens_collector.control.convert import alert_message
from faultlens_collector.control.groups import query_of
from faultlens_collector.control.methods import MAX_INT64
from faultlens_collector.control.rpc import Streams, invalid, server_stream, unary
from faultlens_collector.control.watch import GroupWatch
from faultlens_collector.groups.model import HOUR_NANOS
from faultlens_collector.groups.store import SERIES_DIMENSIONS, GroupStore, SeriesQuery

DEFAULT_SERIES: Final = 100
#: Longest window a series may span, in buckets.
MAX_BUCKETS: Final = 2000
MAX_SERIES: Final = 1000
DEFAULT_ALERTS: Final = 100
_DAY_HOURS: Final = 24


class OverviewApi:
    """``GetSeries``, ``WatchGroups`` and ``ListAlerts`` over one store (and engine)."""

    def __init__(
        self,
        store: GroupStore,
        watch: GroupWatch,
        streams: Streams,
        engine: ActionEngine | None = None,
    ) -> None:
        self._store = store
        self._watch = watch
        self._streams = streams
        self._engine = engine

    def methods(self) -> dict[str, grpc.RpcMethodHandler]:
        """Method name → handler, for the Control service's generic handler."""
        pb = control_pb2
        return {
            "GetSeries": unary(self.get_series, pb.SeriesRequest, pb.SeriesResponse),
            "WatchGroups": server_stream(
                self.watch_groups, pb.WatchGroupsRequest, pb.GroupsChanged
            ),
            "ListAlerts": unary(self.list_alerts, pb.ListAlertsRequest, pb.ListAlertsResponse),
        }

    def get_series(self, request: Any, context: grpc.ServicerContext) -> Any:
        """GetSeries: see the module docstring."""
        bucket_seconds = request.bucket_seconds or 3600
        if bucket_seconds % 3600:
            invalid(context, "bucket_seconds must be a multiple of 3600 (the store keeps hours)")
        bucket_hours = bucket_seconds // 3600
        end = min(request.end_unix_nano, MAX_INT64) or time.time_ns()
        end_hour = -(-end // HOUR_NANOS)
        end_hour = -(-end_hour // bucket_hours) * bucket_hours
        if request.start_unix_nano:
            start_hour = min(request.start_unix_nano, MAX_INT64) // HOUR_NANOS
        else:  # a day back, not before 1970
            start_hour = max(end_hour - max(_DAY_HOURS, bucket_hours), 0)
        start_hour -= start_hour % bucket_hours
        if start_hour >= end_hour:
            invalid(context, "the window ends before it starts")
        if (end_hour - start_hour) // bucket_hours > MAX_BUCKETS:
            invalid(context, f"at most {MAX_BUCKETS} buckets; use wider buckets")
        fingerprints = tuple(text.strip().lower() for text in request.fingerprints)
        if len(fingerprints) > MAX_SERIES:
            invalid(context, f"at most {MAX_SERIES} fingerprints")
        group_by = "fingerprint" if fingerprints else request.group_by.strip()
        if group_by not in SERIES_DIMENSIONS:
            invalid(
                context,
                f"cannot group by {group_by!r}; use one of "
                + ", ".join(name or "'' (total)" for name in SERIES_DIMENSIONS),
            )
        groups = query_of(request.filter, context)
        result = self._store.series(
            SeriesQuery(
                start_hour=start_hour,
                end_hour=end_hour,
                bucket_hours=bucket_hours,
                group_by=group_by,
                fingerprints=fingerprints,
                groups=None if groups.selects_everything else groups,
                limit=min(request.limit or DEFAULT_SERIES, MAX_SERIES),
            )
        )
        return control_pb2.SeriesResponse(
            start_unix_nano=start_hour * HOUR_NANOS,
            bucket_seconds=bucket_seconds,
            buckets=(end_hour - start_hour) // bucket_hours,
            series=[
                control_pb2.Series(key=key, counts=counts, total=total)
                for key, counts, total in result.series
            ],
            more=result.more,
        )

    def watch_groups(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """WatchGroups: see :mod:`.watch`."""
        return self._watch.stream(request, context, self._streams)

    def list_alerts(self, request: Any, context: grpc.ServicerContext) -> Any:
        """ListAlerts: the newest alerts first (none without an engine)."""
        kinds = alert_kinds(request.kinds, context)
        limit = request.limit or DEFAULT_ALERTS
        recent = list(self._engine.recent_alerts) if self._engine is not None else []
        alerts = [alert for alert in reversed(recent) if not kinds or alert.kind in kinds]
        return control_pb2.ListAlertsResponse(
            alerts=[alert_message(alert) for alert in alerts[:limit]]
        )
