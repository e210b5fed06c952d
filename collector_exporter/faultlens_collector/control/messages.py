"""``faultlens.v1`` messages as a client builds and reads them, without the processor:
halt keys as ``KeyItem`` lists (values keep their type: string, bool, int, double),
and replies as JSON-ready dicts (the command line's ``--json``)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.report import hook_run_json, iso_time, verification_json

__all__ = [  # hook_run_json and verification_json live with the group JSON they are part of
    "alert_json",
    "halt_json",
    "hook_run_json",
    "key_items",
    "key_of",
    "operator_action_json",
    "verification_json",
]

if TYPE_CHECKING:  # the type only: a client need not load the resilience layer
    from faultlens.shared import KeyValue

#: Most items a halt key has.
MAX_KEY_ITEMS: Final = 64
#: Longest name or text value of a key item (characters).
MAX_KEY_TEXT: Final = 4096


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


def key_of(items: Sequence[Any]) -> dict[str, KeyValue]:
    """``KeyItem`` messages → a key; ValueError for an item without a name or value, a
    name given twice, a number that is not finite, more than :data:`MAX_KEY_ITEMS`
    items, or a name or text longer than :data:`MAX_KEY_TEXT` characters."""
    if len(items) > MAX_KEY_ITEMS:
        raise ValueError(f"a key has at most {MAX_KEY_ITEMS} items, not {len(items)}")
    key: dict[str, KeyValue] = {}
    for item in items:
        kind = item.WhichOneof("value")
        if not item.name:
            raise ValueError("a key item has no name")
        if len(item.name) > MAX_KEY_TEXT:
            raise ValueError(f"a key item's name is at most {MAX_KEY_TEXT} characters")
        if kind is None:
            raise ValueError(f"key item {item.name!r} has no value")
        if item.name in key:
            raise ValueError(f"key item {item.name!r} is given twice")
        value = getattr(item, kind)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"key item {item.name!r}: {value} is not a finite number")
        if isinstance(value, str) and len(value) > MAX_KEY_TEXT:
            raise ValueError(f"key item {item.name!r}: at most {MAX_KEY_TEXT} characters")
        key[item.name] = value
    return key


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
