"""Failure groups: the record the store keeps per fingerprint, and how occurrences merge into it.

Merging is a pure function so the store, the tests and any future backend agree
on it: counts add up, ``first_seen``/``last_seen`` widen, the severity is the
highest seen (unless an operator set it), the category stays unless it was
``unknown`` (or an operator set it), and a ``resolved`` group seen again becomes
``regressed``. A ``dismissed`` group stays dismissed until its :class:`Dismissal`
lapses: its end time passed, or — for a dismissal "until the rate exceeds N per
hour" — more than N occurrences fell within one hour (see
:meth:`Dismissal.count`); the group is then ``open`` again. Per-group lists are
bounded so a group's size does not grow with its occurrences; counts stop at
:data:`MAX_GROUP_COUNT` rather than overflow the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from faultlens import semconv

STATUSES: Final = ("open", "dismissed", "resolved", "regressed")
#: Distinct services counted per group; occurrences from more are counted under ``OTHER_SERVICES``.
MAX_SERVICES: Final = 64
OTHER_SERVICES: Final = "(other)"
#: Distinct span names kept per group (the first seen).
MAX_SPAN_NAMES: Final = 20
#: Sample occurrences with a trace context kept per group (the most recent).
MAX_SAMPLES: Final = 5
#: A full sample list takes a new sample only this much later than its newest one, so the
#: samples spread over time instead of five traces of one burst (and a storm costs no re-sort).
SAMPLE_SPACING_NANOS: Final = 10 * 1_000_000_000
#: Longest representative stack trace stored (characters).
MAX_STORED_STACKTRACE: Final = 32 * 1024
#: Counts stop growing here (the store holds signed 64-bit integers).
MAX_GROUP_COUNT: Final = (1 << 63) - 1
HOUR_NANOS: Final = 3600 * 10**9


@dataclass(slots=True)
class Occurrence:
    """One failure event (standing for ``count`` occurrences) as ingest found it and the
    store consumes it; never changed once built."""

    fingerprint: str
    exception_type: str
    message: str
    stacktrace: str
    category: str
    severity: str
    handled: bool | None
    count: int
    time_unix_nano: int
    service: str
    span_name: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Dismissal:
    """Why and until when an operator dismissed a group.

    ``until`` (Unix ns, 0: no end) is compared with the processor's clock.
    ``max_per_hour`` (0: no limit) reopens the group when more than that many
    occurrences fall within one hour, counted by the occurrences' own times: the
    first occurrence after the dismissal opens a one-hour window, the first one
    after the window ends opens the next (``window_start``, ``window_count``).
    """

    reason: str
    by: str
    at: int
    until: int = 0
    max_per_hour: int = 0
    window_start: int = 0
    window_count: int = 0

    def count(self, when: int, occurrences: int) -> bool:
        """Count ``occurrences`` at ``when`` (Unix ns); True when the rate limit is passed."""
        if not self.max_per_hour:
            return False
        if not self.window_start or when - self.window_start >= HOUR_NANOS:
            self.window_start = when
            self.window_count = 0
        self.window_count += occurrences
        return self.window_count > self.max_per_hour

    def expired(self, now: int) -> bool:
        """Whether the end time passed at ``now`` (Unix ns)."""
        return bool(self.until) and now >= self.until

    def as_json(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
            "until": self.until,
            "max_per_hour": self.max_per_hour,
            "window_start": self.window_start,
            "window_count": self.window_count,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dismissal:
        return cls(
            reason=str(data.get("reason", "")),
            by=str(data.get("by", "")),
            at=int(data.get("at", 0)),
            until=int(data.get("until", 0)),
            max_per_hour=int(data.get("max_per_hour", 0)),
            window_start=int(data.get("window_start", 0)),
            window_count=int(data.get("window_count", 0)),
        )


@dataclass(frozen=True, slots=True)
class Sample:
    """One occurrence that can be opened in a tracing UI."""

    trace_id: str
    span_id: str
    service: str
    time_unix_nano: int


@dataclass(slots=True)
class Group:
    """Every occurrence of one defect (one fingerprint)."""

    fingerprint: str
    exception_type: str
    message: str
    stacktrace: str
    category: str
    severity: str
    status: str = "open"
    count: int = 0
    handled_count: int = 0
    first_seen: int = 0
    last_seen: int = 0
    service_counts: dict[str, int] = field(default_factory=dict)
    span_names: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    #: An operator set the category / the severity: occurrences no longer change it.
    category_locked: bool = False
    severity_locked: bool = False
    #: Operator's labels, sorted.
    tags: list[str] = field(default_factory=list)
    #: Set while the group is dismissed.
    dismissal: Dismissal | None = None
    #: When the group last went from ``resolved`` to ``regressed`` (Unix ns; 0: never).
    regressed_at: int = 0


@dataclass(slots=True)
class Change:
    """What one write did to a group: the group after it and how it got there.

    ``batch`` holds the occurrences merged (in arrival order), ``last`` the latest
    of them by time.
    """

    group: Group
    occurrences: int
    created: bool
    regressed: bool
    last: Occurrence
    batch: Sequence[Occurrence] = ()
    #: A dismissal lapsed because the group's rate passed the operator's limit.
    reopened: bool = False


def primary_service(service_counts: Mapping[str, int]) -> str:
    """The service with the most occurrences, the greatest name among equals ("" when
    none)."""
    if not service_counts:
        return ""
    return str(max(service_counts.items(), key=lambda item: (item[1], item[0]))[0])


def new_group(first: Occurrence, redact: Callable[[str], str]) -> Group:
    """A group seeded from its first occurrence; message and stack trace are redacted."""
    return Group(
        fingerprint=first.fingerprint,
        exception_type=first.exception_type,
        message=redact(first.message),
        stacktrace=redact(first.stacktrace[:MAX_STORED_STACKTRACE]),
        category=first.category,
        severity=first.severity,
        first_seen=first.time_unix_nano,
        last_seen=first.time_unix_nano,
    )


@dataclass(slots=True)
class Merged:
    """What :func:`merge` did: occurrences added, the latest of them, whether the
    group regressed (``resolved`` → ``regressed``) or was reopened (a dismissal
    lapsed because of the group's rate), and whether its span names or samples grew.
    ``hour`` and ``service`` are set when every occurrence merged has a time in that
    hour (Unix ns // :data:`HOUR_NANOS`) and that service (the usual case, which then
    needs no second pass to count occurrences per hour)."""

    added: int
    last: Occurrence | None
    regressed: bool
    reopened: bool
    lists_grew: bool = False
    hour: int | None = None
    service: str = ""


def merge(  # noqa: PLR0915 -- one pass over the occurrences: the ingest hot path
    group: Group, occurrences: Iterable[Occurrence], now: int = 0
) -> Merged:
    """Add ``occurrences`` (all of ``group``'s fingerprint) to ``group`` in place.

    ``now`` (Unix ns; 0: unknown) decides whether a dismissal's end time passed.
    """
    added = handled = 0
    last: Occurrence | None = None
    dismissal = group.dismissal if group.status == "dismissed" else None
    reopened = lists_grew = False
    first_seen, last_seen, severity = group.first_seen, group.last_seen, group.severity
    take_category = not group.category_locked and group.category == "unknown"
    counts, span_names, samples = group.service_counts, group.span_names, group.samples
    # The one hour [hour_start, hour_end) and service seen so far; one_hour: still one.
    hour_start = hour_end = 0
    one_hour = True
    one_service: str | None = None
    for occurrence in occurrences:
        count = occurrence.count
        added += count
        if occurrence.handled:
            handled += count
        when = occurrence.time_unix_nano
        if when:
            if not first_seen or when < first_seen:
                first_seen = when
            if when >= last_seen:
                last_seen = when
                last = occurrence
        if last is None:
            last = occurrence
        if dismissal is not None and not reopened:
            reopened = dismissal.count(when, count)
        if occurrence.severity != severity:
            severity = semconv.max_severity(severity, occurrence.severity)
        if take_category and occurrence.category != "unknown":
            group.category = occurrence.category
            take_category = False
        service = occurrence.service
        if one_hour and (when < hour_start or when >= hour_end or service != one_service):
            if one_service is None and when:
                hour_start = when - when % HOUR_NANOS
                hour_end = hour_start + HOUR_NANOS
                one_service = service
            else:
                one_hour = False
        if service in counts:
            counts[service] += count
        else:
            _count_service(counts, service, count)
        name = occurrence.span_name
        if name and len(span_names) < MAX_SPAN_NAMES and name not in span_names:
            span_names.append(name)
            lists_grew = True
        if occurrence.trace_id and (
            len(samples) < MAX_SAMPLES or when >= samples[-1].time_unix_nano + SAMPLE_SPACING_NANOS
        ):
            lists_grew = _add_sample(samples, occurrence) or lists_grew
    group.first_seen, group.last_seen = first_seen, last_seen
    if not group.severity_locked:
        group.severity = severity
    _add_counts(group, added, handled)
    regressed = added > 0 and group.status == "resolved"
    if regressed:
        group.status = "regressed"
    if dismissal is not None and (reopened or (now and dismissal.expired(now))):
        group.status = "open"
        group.dismissal = None
    if one_hour and one_service is not None:
        return Merged(
            added, last, regressed, reopened, lists_grew, hour_start // HOUR_NANOS, one_service
        )
    return Merged(added, last, regressed, reopened, lists_grew)


def _add_counts(group: Group, added: int, handled: int) -> None:
    """Add to the group's totals (its per-service counts already grew), clamped."""
    if group.count + added > MAX_GROUP_COUNT:  # a service's count is at most the group's
        for service, value in group.service_counts.items():
            group.service_counts[service] = min(value, MAX_GROUP_COUNT)
    group.count = min(group.count + added, MAX_GROUP_COUNT)
    group.handled_count = min(group.handled_count + handled, MAX_GROUP_COUNT)


def _count_service(counts: dict[str, int], service: str, count: int) -> None:
    """Count a service not yet counted (under ``OTHER_SERVICES`` once there are too many)."""
    if service not in counts and len(counts) >= MAX_SERVICES:
        service = OTHER_SERVICES
    counts[service] = min(counts.get(service, 0) + count, MAX_GROUP_COUNT)


def _add_sample(samples: list[Sample], occurrence: Occurrence) -> bool:
    """Keep ``occurrence`` among the samples (the caller checked that a full list takes
    it); False when it is one of them already."""
    sample = Sample(
        occurrence.trace_id, occurrence.span_id, occurrence.service, occurrence.time_unix_nano
    )
    if sample in samples:
        return False
    samples.append(sample)
    samples.sort(key=lambda item: item.time_unix_nano)
    del samples[:-MAX_SAMPLES]
    return True
