"""Failure groups as JSON an engineer, a script or an AI agent can read.

One object per group with stable keys: ``fingerprint``, ``category``,
``severity``, ``count``, ``handled_count``, ``first_seen``, ``last_seen`` (ISO
8601, UTC), ``status``, ``service`` (the one with the most occurrences),
``services`` (occurrences per service), ``exception_type``, ``message``,
``span_names``, ``samples`` (trace and span ids, with a ``url`` when a trace-URL
template is given), ``tags``, ``dismissal`` (``reason``, ``by``, ``at``, ``until``,
``reopen_above_per_hour``; null unless dismissed), ``category_locked``,
``severity_locked``, root causes across services — ``pattern``,
``root_fingerprint`` (the group this one is a symptom of, or empty), ``caused_by``
and ``causes`` (links: ``fingerprint``, ``traces``, ``occurrences``, ``share``,
``first_seen``, ``last_seen``) — and, in detailed form, ``stacktrace`` and
``hook_runs`` (the group's hook runs, newest first, each fix with its
``verification``: ``state`` pending, verified or failed, ``decided_at``,
``deadline``, ``reason``; see :func:`hook_run_json`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Final

from faultlens_collector.groups.model import primary_service

#: Where ``--trace-url`` is read from when not given.
TRACE_URL_ENV: Final = "FAULTLENS_TRACE_URL"


def iso_time(unix_nano: int) -> str | None:
    """``2026-11-23T10:15:02.123456Z`` for a nanosecond timestamp; None for 0."""
    if not unix_nano:
        return None
    moment = datetime.fromtimestamp(unix_nano / 1e9, tz=timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def trace_url(template: str | None, trace_id: str, span_id: str) -> str | None:
    """The template with ``{trace_id}`` and ``{span_id}`` filled in (None without a template)."""
    if not template:
        return None
    return template.replace("{trace_id}", trace_id).replace("{span_id}", span_id)


def group_json(
    group: Any, *, detailed: bool = False, trace_url_template: str | None = None
) -> dict[str, Any]:
    """A ``FailureGroup`` message as a JSON-ready dict (see the module docstring)."""
    data: dict[str, Any] = {
        "fingerprint": group.fingerprint,
        "status": group.status,
        "category": group.category,
        "severity": group.severity,
        "count": group.count,
        "handled_count": group.handled_count,
        "first_seen": iso_time(group.first_seen_unix_nano),
        "last_seen": iso_time(group.last_seen_unix_nano),
        "service": primary_service(group.service_counts),
        "services": dict(sorted(group.service_counts.items())),
        "exception_type": group.exception_type,
        "message": group.message,
        "span_names": list(group.span_names),
        "samples": [
            {
                "trace_id": sample.trace_id,
                "span_id": sample.span_id,
                "service": sample.service,
                "time": iso_time(sample.time_unix_nano),
                "url": trace_url(trace_url_template, sample.trace_id, sample.span_id),
            }
            for sample in group.samples
        ],
        "tags": list(group.tags),
        "dismissal": _dismissal(group) if group.HasField("dismissal") else None,
        "category_locked": group.category_locked,
        "severity_locked": group.severity_locked,
        "pattern": group.pattern,
        "root_fingerprint": group.root_fingerprint,
        "caused_by": [_link(link) for link in group.caused_by],
        "causes": [_link(link) for link in group.causes],
    }
    if detailed:
        data["stacktrace"] = group.stacktrace
        data["hook_runs"] = [hook_run_json(run) for run in group.hook_runs]
    return data


def _link(link: Any) -> dict[str, Any]:
    """A ``GroupLink`` message as a JSON-ready dict (the share rounded to 4 digits)."""
    return {
        "fingerprint": link.fingerprint,
        "traces": link.traces,
        "occurrences": link.occurrences,
        "share": round(link.share, 4),
        "first_seen": iso_time(link.first_seen_unix_nano),
        "last_seen": iso_time(link.last_seen_unix_nano),
    }


def _dismissal(group: Any) -> dict[str, Any]:
    dismissal = group.dismissal
    return {
        "reason": dismissal.reason,
        "by": dismissal.by,
        "at": iso_time(dismissal.dismissed_unix_nano),
        "until": iso_time(dismissal.until_unix_nano),
        "reopen_above_per_hour": dismissal.reopen_above_per_hour or None,
    }


def hook_run_json(run: Any) -> dict[str, Any]:
    """A ``HookRun`` message as a JSON-ready dict."""
    return {
        "id": run.id,
        "started_at": iso_time(run.started_unix_nano),
        "purpose": run.purpose,
        "rule": run.rule,
        "hook": run.hook,
        "fingerprint": run.fingerprint,
        "outcome": run.outcome,
        "exit_code": run.exit_code if run.exited else None,
        "duration": run.duration_seconds,
        "output_tail": run.output_tail,
        "detail": run.detail,
        "requested_by": run.requested_by,
        "verification": verification_json(run.verification)
        if run.HasField("verification")
        else None,
    }


def verification_json(verification: Any) -> dict[str, Any]:
    """A ``FixVerification`` message as a JSON-ready dict: ``state`` (pending, verified,
    failed), ``decided_at`` (null while pending), ``applied_at``, ``deadline`` (while
    pending: verified then if the group stays quiet), ``reason``."""
    return {
        "state": verification.state,
        "decided_at": iso_time(verification.decided_unix_nano),
        "applied_at": iso_time(verification.applied_unix_nano),
        "deadline": iso_time(verification.deadline_unix_nano),
        "reason": verification.reason,
    }
