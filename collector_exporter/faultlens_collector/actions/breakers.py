"""``breaker_open`` alerts from the resilience metrics arriving on MetricsService.

The SDK's circuit breakers report ``faultlens.breaker.status`` (1 for the
current ``breaker.state``, 0 for the others) and ``faultlens.breaker.transitions``
(a counter per state entered), per ``breaker.name`` (docs/resilience.md, "Metrics"). A breaker is
identified by the resource's ``service.name`` and ``service.instance.id`` and its
name.

:func:`breaker_reports` extracts, from one ``ExportMetricsServiceRequest``, the
state each breaker reports and its count of transitions into ``open``.
:class:`BreakerWatch` turns successive reports into openings:

* a breaker seen ``open`` or ``half_open`` that was not already known to be
  open raises the ``breaker_open`` condition (alert) — it stays raised through
  any number of half-open probes and re-openings, and clears only when the
  breaker reports ``closed``;
* a breaker reported ``closed`` whose open-transition count grew since the last
  export opened *and* closed in between (an outage shorter than the export
  interval): one alert, counting the openings, condition not raised;
* ``forced_open`` is an operator's choice and alerts nothing.

Cumulative counters are compared with the previous point (a new start time or a
smaller value is a reset); a counter seen for the first time counts only if it
started after the watch did. Delta counters count as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from faultlens.shared import resilience_names as names

from faultlens_collector.actions.conditions import ConditionLatch

STATUS_METRIC: Final = "faultlens.breaker.status"
TRANSITIONS_METRIC: Final = "faultlens.breaker.transitions"
_DELTA: Final = 1  # AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
_MAX_BREAKERS: Final = 10_000


@dataclass(frozen=True, slots=True)
class BreakerId:
    service: str
    instance: str
    breaker: str

    @property
    def condition(self) -> str:
        return f"breaker_open:{self.service}/{self.instance}/{self.breaker}"


@dataclass(slots=True)
class BreakerReport:
    """What one request says about one breaker.

    ``state`` is the state whose status point is 1 (the latest such point), or
    None without a status point. ``opens`` is the transitions-into-open point:
    ``(value, start_time_unix_nano, is_delta)``, or None.
    """

    state: str | None = None
    state_time: int = -1
    opens: tuple[int, int, bool] | None = None


@dataclass(frozen=True, slots=True)
class BreakerOpened:
    """A breaker that opened: ``opens`` times since the previous report (at least 1)."""

    breaker: BreakerId
    opens: int


def _attributes(items: Any) -> dict[str, Any]:
    result = {}
    for item in items:
        kind = item.value.WhichOneof("value")
        if kind is not None:
            result[item.key] = getattr(item.value, kind)
    return result


def _number(point: Any) -> float:
    kind = point.WhichOneof("value")
    return float(getattr(point, kind)) if kind else 0.0


def _metrics(request: Any) -> Iterator[tuple[dict[str, Any], Any]]:
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name in (STATUS_METRIC, TRANSITIONS_METRIC):
                    yield resource, metric


def breaker_reports(request: Any) -> dict[BreakerId, BreakerReport]:
    """The breakers an ``ExportMetricsServiceRequest`` reports on, with what it says."""
    reports: dict[BreakerId, BreakerReport] = {}
    for resource, metric in _metrics(request):
        service = str(resource.get("service.name", ""))
        instance = str(resource.get("service.instance.id", ""))
        kind = metric.WhichOneof("data")
        if kind not in ("sum", "gauge"):
            continue
        data = getattr(metric, kind)
        is_delta = kind == "sum" and data.aggregation_temporality == _DELTA
        for point in data.data_points:
            attributes = _attributes(point.attributes)
            breaker = attributes.get(names.BREAKER_NAME)
            state = attributes.get(names.BREAKER_STATE)
            if not isinstance(breaker, str) or not isinstance(state, str):
                continue
            report = reports.setdefault(BreakerId(service, instance, breaker), BreakerReport())
            value = _number(point)
            if metric.name == STATUS_METRIC:
                if value >= 1 and point.time_unix_nano >= report.state_time:
                    report.state, report.state_time = state, point.time_unix_nano
            elif state == "open":
                report.opens = (int(value), point.start_time_unix_nano, is_delta)
    return reports


@dataclass
class BreakerWatch:
    """Follows breakers across requests and reports each opening once."""

    latch: ConditionLatch
    started_at_ns: int
    _counters: dict[BreakerId, tuple[int, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, request: Any, now: float) -> list[BreakerOpened]:
        """The openings ``request`` reveals (raising/clearing conditions as it goes)."""
        opened: list[BreakerOpened] = []
        with self._lock:
            for breaker, report in breaker_reports(request).items():
                count = self._new_opens(breaker, report)
                key = breaker.condition
                if report.state in ("open", "half_open"):
                    if self.latch.raise_(key, now):
                        opened.append(BreakerOpened(breaker, max(count, 1)))
                elif report.state == "closed":
                    if self.latch.is_raised(key):
                        self.latch.clear([key])
                    elif count > 0:
                        opened.append(BreakerOpened(breaker, count))
                elif report.state is None and count > 0 and not self.latch.is_raised(key):
                    opened.append(BreakerOpened(breaker, count))
        return opened

    def _new_opens(self, breaker: BreakerId, report: BreakerReport) -> int:
        if report.opens is None:
            return 0
        value, start, is_delta = report.opens
        if is_delta:
            return value
        previous = self._counters.get(breaker)
        if previous is None and len(self._counters) >= _MAX_BREAKERS:
            del self._counters[next(iter(self._counters))]
        self._counters[breaker] = (start, value)
        if previous is None:
            return value if start >= self.started_at_ns else 0
        previous_start, previous_value = previous
        if start != previous_start or value < previous_value:
            return value  # the counter was reset (the process restarted)
        return value - previous_value
