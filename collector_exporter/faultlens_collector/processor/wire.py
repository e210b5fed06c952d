"""Conversions between the action engine's records and ``faultlens.v1`` messages.

Used by the control service (records → messages) and by its clients, the
command line (messages → JSON-ready dicts). Halt keys travel as ``KeyItem``
lists whose values keep their type (string, bool, int, double).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from faultlens.resilience.halts import KeyValue

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions import Alert, AuditRecord, Effectiveness, HaltChange, HaltRecord
from faultlens_collector.actions.facts import attribute_text
from faultlens_collector.groups.store import OperatorAction
from faultlens_collector.report import iso_time

_EVENT_KINDS: Final = {
    "snapshot": control_pb2.HALT_EVENT_KIND_SNAPSHOT,
    "halted": control_pb2.HALT_EVENT_KIND_HALTED,
    "resumed": control_pb2.HALT_EVENT_KIND_RESUMED,
}


def nanos(seconds: float | None) -> int:
    """Epoch seconds → Unix nanoseconds (0 for None)."""
    return 0 if seconds is None else int(seconds * 1e9)


def key_items(key: Mapping[str, KeyValue] | Iterable[tuple[str, KeyValue]]) -> list[Any]:
    """A halt key as ``KeyItem`` messages (sorted by name)."""
    items = key.items() if isinstance(key, Mapping) else key
    result = []
    for name, value in sorted(items):
        if isinstance(value, bool):
            result.append(control_pb2.KeyItem(name=name, bool_value=value))
        elif isinstance(value, int):
            result.append(control_pb2.KeyItem(name=name, int_value=value))
        elif isinstance(value, float):
            result.append(control_pb2.KeyItem(name=name, double_value=value))
        else:
            result.append(control_pb2.KeyItem(name=name, string_value=str(value)))
    return result


def key_of(items: Iterable[Any]) -> dict[str, KeyValue]:
    """``KeyItem`` messages → a key; ValueError for an item without a name or value, or a
    name given twice."""
    key: dict[str, KeyValue] = {}
    for item in items:
        kind = item.WhichOneof("value")
        if not item.name:
            raise ValueError("a key item has no name")
        if kind is None:
            raise ValueError(f"key item {item.name!r} has no value")
        if item.name in key:
            raise ValueError(f"key item {item.name!r} is given twice")
        key[item.name] = getattr(item, kind)
    return key


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


def hook_run_message(record: AuditRecord) -> Any:
    """An :class:`AuditRecord` as a ``HookRun`` message."""
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


# messages → JSON (the command line's --json output)
def halt_json(halt: Any) -> dict[str, Any]:
    """A ``Halt`` message as a JSON-ready dict."""
    return {
        "id": halt.id,
        "rule": halt.rule,
        "key": key_of(halt.key),
        "reason": halt.reason,
        "since": iso_time(halt.since_unix_nano),
        "fingerprints": list(halt.fingerprints),
        "resumed_at": iso_time(halt.resumed_unix_nano),
        "resumed_by": halt.resumed_by or None,
    }


def operator_action_json(action: Any) -> dict[str, Any]:
    """An ``OperatorAction`` message as a JSON-ready dict."""
    return {
        "id": action.id,
        "at": iso_time(action.at_unix_nano),
        "actor": action.actor,
        "peer": action.peer,
        "action": action.action,
        "count": action.count,
        "detail": json.loads(action.detail_json or "{}"),
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
    }


def alert_json(alert: Any) -> dict[str, Any]:
    """An ``Alert`` message as a JSON-ready dict."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "created_at": iso_time(alert.created_unix_nano),
        "severity": alert.severity,
        "body": alert.body,
        "attributes": dict(sorted(alert.attributes.items())),
    }
