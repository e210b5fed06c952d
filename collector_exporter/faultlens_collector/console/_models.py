"""The console's JSON shapes (they make the OpenAPI document) and how control-API
messages become them.

Times travel twice: as ISO 8601 text (``last_seen``) for people and as integer
milliseconds since the epoch (``last_seen_ms``) for the page's arithmetic, since
JavaScript numbers cannot hold nanoseconds. Text from the wire is passed as data;
the page only ever puts it into text nodes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from faultlens_collector.control.messages import (
    alert_json,
    halt_json,
    hook_run_json,
    operator_action_json,
)
from faultlens_collector.groups.model import primary_service
from faultlens_collector.report import iso_time, trace_url


def millis(unix_nano: int) -> int:
    """Nanoseconds → whole milliseconds."""
    return unix_nano // 1_000_000


class Dismissal(BaseModel):
    reason: str
    by: str
    at: str | None
    until: str | None
    reopen_above_per_hour: int | None


class GroupRow(BaseModel):
    """One failure group as the list shows it."""

    fingerprint: str
    status: str
    category: str
    severity: str
    count: int
    handled_count: int
    #: ``handled`` (every occurrence was caught), ``escaped`` (none was) or ``mixed``.
    outcome: Literal["handled", "escaped", "mixed"]
    first_seen: str | None
    last_seen: str | None
    first_seen_ms: int
    last_seen_ms: int
    regressed_at: str | None
    service: str
    services: dict[str, int]
    exception_type: str
    message: str
    tags: list[str]
    dismissal: Dismissal | None
    category_locked: bool
    severity_locked: bool
    #: Occurrences per hour over the last 24 hours, oldest first (when asked for).
    spark: list[int] | None = None
    #: Root causes across services: the group's pattern (``cascade``, ``timing``,
    #: ``integration``, ``data_quality`` or empty), the group it is a symptom of (empty:
    #: none), and how many groups its failures caused.
    pattern: str = ""
    root_fingerprint: str = ""
    causes: int = 0


class Sample(BaseModel):
    trace_id: str
    span_id: str
    service: str
    time: str | None
    url: str | None


class CauseLink(BaseModel):
    """A link to another group: the traces that showed it, the symptom's occurrences the
    cause explains and their share of the symptom's occurrences, and what the other
    group is (empty when it could not be read)."""

    fingerprint: str
    traces: int = 0
    occurrences: int = 0
    share: float = 0.0
    last_seen: str | None = None
    exception_type: str = ""
    message: str = ""
    service: str = ""
    status: str = ""


class RootCause(BaseModel):
    """A group's place among root causes across services: its ``pattern``, the root it is
    a symptom of (with that group's type, when read), the groups whose failures caused
    its own (``caused_by``) and the groups its failures caused (``causes``), strongest
    first. Null when the group has none of these."""

    pattern: str = ""
    root_fingerprint: str = ""
    root: CauseLink | None = None
    caused_by: list[CauseLink] = Field(default_factory=list)
    causes: list[CauseLink] = Field(default_factory=list)


class Series(BaseModel):
    key: str
    counts: list[int]
    total: int


class SeriesSet(BaseModel):
    """Series over one window: ``buckets`` buckets of ``bucket_seconds`` from ``start_ms``."""

    start_ms: int
    bucket_seconds: int
    buckets: int
    series: list[Series]
    more: int = 0


class Verification(BaseModel):
    """Whether a fix held: ``pending`` until ``deadline``, then ``verified`` or ``failed``
    (at ``decided_at``, for ``reason``)."""

    state: str
    decided_at: str | None
    applied_at: str | None
    deadline: str | None
    reason: str


class HookRun(BaseModel):
    id: str
    started_at: str | None
    started_ms: int
    purpose: str
    rule: str
    hook: str
    fingerprint: str
    outcome: str
    exit_code: int | None
    duration: float
    output_tail: str
    detail: str
    requested_by: str
    #: Set for a fix (fix and manual runs that were judged); null for halt hooks, dry runs
    #: and dropped jobs.
    verification: Verification | None = None


class AuditEntry(BaseModel):
    id: int
    at: str | None
    at_ms: int
    actor: str
    peer: str
    action: str
    count: int
    detail: dict[str, Any]


class GroupDetail(BaseModel):
    """Everything about one group."""

    group: GroupRow
    stacktrace: str
    span_names: list[str]
    samples: list[Sample]
    series: SeriesSet
    hook_runs: list[HookRun]
    audit: list[AuditEntry]
    root_cause: RootCause | None = None


class GroupPage(BaseModel):
    """One page of the list."""

    groups: list[GroupRow]
    #: Groups matching the search (null when not counted: ``count=false``).
    total: int | None
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None
    #: When the page was read (for "N new since").
    read_ms: int


class GroupResult(BaseModel):
    fingerprint: str
    outcome: str


class BulkResult(BaseModel):
    action: str
    matched: int
    dry_run: bool
    action_id: int
    queued: int = 0
    dropped: int = 0
    results: list[GroupResult]
    results_truncated: bool = False
    #: When the processor acted (ms); hook runs of a fix start after it.
    at_ms: int


class Halt(BaseModel):
    id: str
    rule: str
    key: dict[str, str | bool | int | float]
    reason: str
    since: str | None
    since_ms: int
    fingerprints: list[str]
    resumed_at: str | None
    resumed_by: str | None


class Alert(BaseModel):
    id: str
    kind: str
    created_at: str | None
    created_ms: int
    severity: str
    body: str
    attributes: dict[str, str]


class HookHealth(BaseModel):
    """A hook's recent fix record with the seed's thresholds: success rate below 70 %
    is a warning, below 50 % critical; mean duration above 30 s a warning, above 60 s
    critical."""

    hook: str
    samples: int
    verified: int
    success_rate: float | None
    mean_duration: float | None
    pending: int
    level: str
    duration_level: Literal["ok", "warning", "critical"]


class Thresholds(BaseModel):
    success_warning: float = 0.70
    success_critical: float = 0.50
    duration_warning: float = 30.0
    duration_critical: float = 60.0


class GroupCount(BaseModel):
    total: int


class GroupList(BaseModel):
    total: int
    groups: list[GroupRow]


class Dashboard(BaseModel):
    """The dashboard's data for one window (``hours`` back from now)."""

    hours: int
    by_category: SeriesSet
    by_severity: SeriesSet
    by_service: SeriesSet
    new_groups: GroupList
    regressions: GroupList
    top_groups: list[GroupRow]
    hooks: list[HookHealth]
    thresholds: Thresholds
    halts: list[Halt]
    alerts: list[Alert]


class Session(BaseModel):
    actor: str
    csrf: str
    title: str
    trace_url: bool


class LoginState(BaseModel):
    needs_token: bool
    title: str


class Problem(BaseModel):
    """An error: what went wrong, in one line."""

    detail: str


# messages → models
def group_row(group: Any, spark: list[int] | None = None) -> GroupRow:
    """A ``FailureGroup`` message as a list row."""
    if group.handled_count >= group.count and group.count:
        outcome: Literal["handled", "escaped", "mixed"] = "handled"
    elif group.handled_count == 0:
        outcome = "escaped"
    else:
        outcome = "mixed"
    dismissal = None
    if group.HasField("dismissal"):
        d = group.dismissal
        dismissal = Dismissal(
            reason=d.reason,
            by=d.by,
            at=iso_time(d.dismissed_unix_nano),
            until=iso_time(d.until_unix_nano),
            reopen_above_per_hour=d.reopen_above_per_hour or None,
        )
    return GroupRow(
        fingerprint=group.fingerprint,
        status=group.status,
        category=group.category,
        severity=group.severity,
        count=group.count,
        handled_count=group.handled_count,
        outcome=outcome,
        first_seen=iso_time(group.first_seen_unix_nano),
        last_seen=iso_time(group.last_seen_unix_nano),
        first_seen_ms=millis(group.first_seen_unix_nano),
        last_seen_ms=millis(group.last_seen_unix_nano),
        regressed_at=iso_time(group.regressed_unix_nano),
        service=primary_service(group.service_counts),
        services=dict(sorted(group.service_counts.items(), key=lambda item: -item[1])),
        exception_type=group.exception_type,
        message=group.message,
        tags=list(group.tags),
        dismissal=dismissal,
        category_locked=group.category_locked,
        severity_locked=group.severity_locked,
        spark=spark,
        pattern=group.pattern,
        root_fingerprint=group.root_fingerprint,
        causes=len(group.causes),
    )


def samples(group: Any, template: str | None) -> list[Sample]:
    """A group's samples, newest first, linked through the trace-URL template."""
    return [
        Sample(
            trace_id=sample.trace_id,
            span_id=sample.span_id,
            service=sample.service,
            time=iso_time(sample.time_unix_nano),
            url=trace_url(template, sample.trace_id, sample.span_id)
            if _hex(sample.trace_id)
            else None,
        )
        for sample in reversed(group.samples)
    ]


def _hex(text: str) -> bool:
    return bool(text) and all(char in "0123456789abcdef" for char in text)


def root_cause(group: Any, others: dict[str, Any] | None = None) -> RootCause | None:
    """A ``FailureGroup``'s root-cause fields (see :class:`RootCause`); ``others``: the
    linked groups' messages by fingerprint, for their type, message and service. None
    when the group has no pattern, root or link."""
    if not (group.pattern or group.root_fingerprint or group.caused_by or group.causes):
        return None
    known = others or {}

    def linked(link: Any) -> CauseLink:
        return cause_link(link.fingerprint, known.get(link.fingerprint), link)

    root = group.root_fingerprint
    return RootCause(
        pattern=group.pattern,
        root_fingerprint=root,
        root=cause_link(root, known.get(root)) if root else None,
        caused_by=[linked(link) for link in group.caused_by],
        causes=[linked(link) for link in group.causes],
    )


def cause_link(fingerprint: str, other: Any = None, link: Any = None) -> CauseLink:
    """The group ``fingerprint`` at the other end of ``link`` (a ``GroupLink``; None for a
    group's root, where only who it is matters); ``other`` its message, if read."""
    fields: dict[str, Any] = {"fingerprint": fingerprint}
    if link is not None:
        fields.update(
            traces=link.traces,
            occurrences=link.occurrences,
            share=link.share,
            last_seen=iso_time(link.last_seen_unix_nano),
        )
    if other is not None:
        fields.update(
            exception_type=other.exception_type,
            message=other.message[:200],
            service=primary_service(other.service_counts),
            status=other.status,
        )
    return CauseLink(**fields)


def series_set(reply: Any) -> SeriesSet:
    """A ``SeriesResponse`` as a :class:`SeriesSet`."""
    return SeriesSet(
        start_ms=millis(reply.start_unix_nano),
        bucket_seconds=reply.bucket_seconds,
        buckets=reply.buckets,
        series=[Series(key=s.key, counts=list(s.counts), total=s.total) for s in reply.series],
        more=reply.more,
    )


def hook_run(run: Any) -> HookRun:
    return HookRun(**hook_run_json(run), started_ms=millis(run.started_unix_nano))


def audit_entry(action: Any) -> AuditEntry:
    return AuditEntry(**operator_action_json(action), at_ms=millis(action.at_unix_nano))


def halt(message: Any) -> Halt:
    return Halt(**halt_json(message), since_ms=millis(message.since_unix_nano))


def alert(message: Any) -> Alert:
    return Alert(**alert_json(message), created_ms=millis(message.created_unix_nano))


def hook_health(report: Any, thresholds: Thresholds) -> HookHealth:
    mean = report.mean_duration_seconds if report.samples else None
    if mean is None or mean <= thresholds.duration_warning:
        duration_level: Literal["ok", "warning", "critical"] = "ok"
    elif mean <= thresholds.duration_critical:
        duration_level = "warning"
    else:
        duration_level = "critical"
    return HookHealth(
        hook=report.hook,
        samples=report.samples,
        verified=report.verified,
        success_rate=report.success_rate if report.has_success_rate else None,
        mean_duration=mean,
        pending=report.pending,
        level=report.level,
        duration_level=duration_level,
    )
