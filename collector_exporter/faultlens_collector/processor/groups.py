"""Failure groups: the record the store keeps per fingerprint, and how occurrences merge into it.

Merging is a pure function so the store, the tests and any future backend agree
on it: counts add up, ``first_seen``/``last_seen`` widen, the severity is the
highest seen, the category stays unless it was ``unknown`` (or an operator set
it), and a ``resolved`` group seen again becomes ``regressed``. Per-group lists
are bounded so a group's size does not grow with its occurrences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from faultlens import semconv

from faultlens_collector.processor.occurrences import Occurrence

STATUSES: Final = ("open", "dismissed", "resolved", "regressed")
#: Distinct services counted per group; occurrences from more are counted under ``OTHER_SERVICES``.
MAX_SERVICES: Final = 64
OTHER_SERVICES: Final = "(other)"
#: Distinct span names kept per group (the first seen).
MAX_SPAN_NAMES: Final = 20
#: Sample occurrences with a trace context kept per group (the most recent).
MAX_SAMPLES: Final = 5
#: Longest representative stack trace stored (characters).
MAX_STORED_STACKTRACE: Final = 32 * 1024


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
    category_locked: bool = False


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


def merge(group: Group, occurrences: Iterable[Occurrence]) -> tuple[int, bool, Occurrence | None]:
    """Add ``occurrences`` (all of ``group``'s fingerprint) to ``group`` in place.

    Returns the number of occurrences added, whether the group regressed
    (``resolved`` → ``regressed``), and the latest occurrence merged.
    """
    added = 0
    last: Occurrence | None = None
    for occurrence in occurrences:
        count = occurrence.count
        added += count
        group.count += count
        if occurrence.handled:
            group.handled_count += count
        when = occurrence.time_unix_nano
        if when:
            if not group.first_seen or when < group.first_seen:
                group.first_seen = when
            if when >= group.last_seen:
                group.last_seen = when
                last = occurrence
        if last is None:
            last = occurrence
        group.severity = semconv.max_severity(group.severity, occurrence.severity)
        if (
            not group.category_locked
            and group.category == "unknown"
            and occurrence.category != "unknown"
        ):
            group.category = occurrence.category
        _count_service(group.service_counts, occurrence.service, count)
        if (
            occurrence.span_name
            and occurrence.span_name not in group.span_names
            and len(group.span_names) < MAX_SPAN_NAMES
        ):
            group.span_names.append(occurrence.span_name)
        if occurrence.trace_id:
            _add_sample(group.samples, occurrence)
    regressed = added > 0 and group.status == "resolved"
    if regressed:
        group.status = "regressed"
    return added, regressed, last


def _count_service(counts: dict[str, int], service: str, count: int) -> None:
    if service not in counts and len(counts) >= MAX_SERVICES:
        service = OTHER_SERVICES
    counts[service] = counts.get(service, 0) + count


def _add_sample(samples: list[Sample], occurrence: Occurrence) -> None:
    sample = Sample(
        occurrence.trace_id, occurrence.span_id, occurrence.service, occurrence.time_unix_nano
    )
    if sample in samples:
        return
    samples.append(sample)
    samples.sort(key=lambda item: item.time_unix_nano)
    del samples[:-MAX_SAMPLES]
