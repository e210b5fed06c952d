"""The processor's records as ``faultlens.v1`` messages, for the control service:
groups, dismissals, halts and their changes, alerts, hook runs, effectiveness, the
operator log. (What clients need — halt keys, messages as JSON — is
:mod:`.messages`, which needs none of the processor.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions import (
    Alert,
    Effectiveness,
    FixRecord,
    HaltChange,
    HaltRecord,
    HookRun,
)
from faultlens_collector.actions.facts import attribute_text
from faultlens_collector.causes.patterns import pattern_of
from faultlens_collector.causes.view import Causality, LinkedGroup
from faultlens_collector.control.messages import key_items
from faultlens_collector.groups.model import Dismissal, Group
from faultlens_collector.groups.store import OperatorAction

_EVENT_KINDS: Final = {
    "snapshot": control_pb2.HALT_EVENT_KIND_SNAPSHOT,
    "halted": control_pb2.HALT_EVENT_KIND_HALTED,
    "resumed": control_pb2.HALT_EVENT_KIND_RESUMED,
}


def nanos(seconds: float | None) -> int:
    """Epoch seconds → Unix nanoseconds (0 for None)."""
    return 0 if seconds is None else int(seconds * 1e9)


def halt_message(halt: HaltRecord) -> Any:
    """A :class:`HaltRecord` as a ``Halt`` message."""
    return control_pb2.Halt(
        id=halt.id,
        rule=halt.rule,
        key=key_items(halt.key),
        reason=halt.reason,
        since_unix_nano=nanos(halt.since),
        fingerprints=halt.fingerprints,
        resumed_unix_nano=nanos(halt.resumed_at),
        resumed_by=halt.resumed_by or "",
    )


def halt_event(change: HaltChange) -> Any:
    """A halt change (from the halt broadcast) as a ``HaltEvent``."""
    return control_pb2.HaltEvent(
        kind=_EVENT_KINDS[change.kind],
        version=change.version,
        halts=[halt_message(halt) for halt in change.halts],
    )


def alert_message(alert: Alert) -> Any:
    """An :class:`Alert` as an ``Alert`` message (attribute values as text)."""
    return control_pb2.Alert(
        id=alert.id,
        kind=alert.kind,
        created_unix_nano=nanos(alert.created_at),
        severity=alert.severity,
        body=alert.body,
        attributes={key: _text(value) for key, value in alert.attributes.items()},
    )


def _text(value: object) -> str:
    if isinstance(value, (str, bool, int, float)):
        return attribute_text(value)
    if isinstance(value, (tuple, list)):
        return json.dumps(list(value))
    return str(value)


def hook_run_message(run: HookRun) -> Any:
    """A :class:`HookRun` as a ``HookRun`` message (``verification`` set for a fix)."""
    record, fix = run.record, run.fix
    return control_pb2.HookRun(
        id=record.id,
        started_unix_nano=nanos(record.started_at),
        purpose=record.purpose,
        rule=record.rule,
        hook=record.hook,
        fingerprint=record.fingerprint,
        outcome=record.outcome,
        exited=record.exit_code is not None,
        exit_code=record.exit_code or 0,
        duration_seconds=record.duration,
        output_tail=record.output_tail,
        detail=record.detail,
        requested_by=record.requested_by,
        verification=None if fix is None else verification_message(fix),
    )


def verification_message(fix: FixRecord) -> Any:
    """A :class:`FixRecord` as a ``FixVerification`` message."""
    return control_pb2.FixVerification(
        state=fix.result,
        decided_unix_nano=nanos(fix.decided_at),
        applied_unix_nano=nanos(fix.applied_at),
        deadline_unix_nano=nanos(fix.deadline) if fix.result == "pending" else 0,
        reason=fix.reason,
    )


def effectiveness_message(report: Effectiveness) -> Any:
    """A hook's :class:`Effectiveness` as a ``HookEffectiveness`` message."""
    return control_pb2.HookEffectiveness(
        hook=report.hook,
        samples=report.samples,
        verified=report.verified,
        has_success_rate=report.success_rate is not None,
        success_rate=report.success_rate or 0.0,
        mean_duration_seconds=report.mean_duration or 0.0,
        pending=report.pending,
        level=report.level,
    )


def operator_action_message(action: OperatorAction) -> Any:
    """An :class:`OperatorAction` as an ``OperatorAction`` message."""
    return control_pb2.OperatorAction(
        id=action.id,
        at_unix_nano=action.at,
        actor=action.actor,
        peer=action.peer,
        action=action.action,
        count=action.count,
        detail_json=json.dumps(dict(action.detail), sort_keys=True),
    )


def to_message(
    group: Group, causality: Causality | None = None, hook_runs: Sequence[HookRun] = ()
) -> Any:
    """A :class:`Group` as a ``faultlens.v1.FailureGroup`` message, with its place among
    root causes when ``causality`` is given (the pattern from its category otherwise),
    and its hook runs when given."""
    if causality is None:
        causality = Causality(pattern_of(group.category), "")
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
        pattern=causality.pattern,
        root_fingerprint=causality.root_fingerprint,
        caused_by=[link_message(link) for link in causality.caused_by],
        causes=[link_message(link) for link in causality.causes],
        hook_runs=[hook_run_message(run) for run in hook_runs],
    )


def link_message(link: LinkedGroup) -> Any:
    """One end of a group link as a ``GroupLink`` message."""
    return control_pb2.GroupLink(
        fingerprint=link.fingerprint,
        traces=max(link.traces, 0),
        occurrences=max(link.occurrences, 0),
        share=link.share,
        first_seen_unix_nano=max(link.first_seen, 0),
        last_seen_unix_nano=max(link.last_seen, 0),
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
