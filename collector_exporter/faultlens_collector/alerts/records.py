"""An alert and its place in the outbox: what the action engine raises and the sender
delivers. Times are epoch seconds; :meth:`Alert.as_json` / :meth:`Alert.from_json` give
the stored form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from opentelemetry.util.types import AttributeValue

#: Alert severities map onto OTLP severity numbers (see :mod:`.sender`).
AlertSeverity = Literal["low", "medium", "high", "critical"]


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert about to be sent (docs/actions.md, "Alerts").

    ``id`` identifies one occurrence of one condition; it is sent as the
    ``faultlens.alert.id`` attribute, and the outbox refuses a second alert with
    an id it already holds, so a receiver can drop the rare duplicate that
    at-least-once delivery allows by that attribute.
    """

    id: str
    kind: str
    created_at: float
    severity: AlertSeverity
    body: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "created_at": self.created_at,
            "severity": self.severity,
            "body": self.body,
            "attributes": {
                key: list(value) if isinstance(value, (list, tuple)) else value
                for key, value in self.attributes.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        attributes = {
            str(key): tuple(value) if isinstance(value, list) else value
            for key, value in dict(data.get("attributes") or {}).items()
        }
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            created_at=float(data["created_at"]),
            severity=data["severity"],
            body=str(data["body"]),
            attributes=MappingProxyType(attributes),
        )


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert in the outbox: its sequence number there, and the alert."""

    seq: int
    alert: Alert
