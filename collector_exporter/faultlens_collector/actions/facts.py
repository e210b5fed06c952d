"""What the action engine is told about a failure group: :class:`FailureFacts`.

The processor builds one ``FailureFacts`` per group update from its own group
record. Everything in it is *data*: it is matched against rules, handed to hooks
as JSON on stdin and as ``FAULTLENS_FAILURE_*`` environment variables, and copied
into alerts — it never selects what runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Final

from faultlens import semconv
from faultlens.semconv import SERVICE_NAME, SPAN_NAME
from opentelemetry.util.types import AttributeValue

_EMPTY: Final[Mapping[str, AttributeValue]] = MappingProxyType({})

#: Group statuses for which rules (fix hooks, rule alerts) and rate-spike alerts stay quiet.
SILENT_STATUSES: Final = frozenset({"dismissed"})


@dataclass(slots=True)
class FailureFacts:
    """One failure group as the engine sees it (read-only by convention).

    It is not a frozen dataclass: the processor builds one per group on every commit,
    and a frozen one costs about 1 µs more to build (``object.__setattr__`` per field).
    Nothing in faultlens changes one after it is built; neither should a listener.

    ``count`` is the group's total number of occurrences; the number an update
    adds is passed separately (``occurrences`` of
    :meth:`~faultlens_collector.actions.ActionEngine.on_group_updated`).
    ``last_seen`` is the time (epoch seconds) of the latest occurrence when the
    processor knows it; fix verification uses it to ignore occurrences that
    happened before a fix finished but arrived after it.

    ``message`` is the group's stored (redacted) representative message, the first
    one seen; ``latest_message`` is the latest occurrence's own message as it arrived
    (not redacted: whatever shows it redacts it, as :meth:`summary` callers do; not
    part of :meth:`as_json`, so hooks never receive it), empty when unknown.
    """

    fingerprint: str
    exception_type: str = ""
    message: str = ""
    category: str = "unknown"
    severity: str = "medium"
    service: str = ""
    span_name: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=lambda: _EMPTY)
    count: int = 1
    status: str = "open"
    handled: bool | None = None
    last_seen: float | None = None
    latest_message: str = ""

    def value_of(self, name: str) -> AttributeValue | None:
        """The value a halt-rule key field names, or None when the failure lacks it.

        ``service.name``, ``span.name``, ``exception.type``, ``exception.message``,
        ``failure.category``, ``failure.severity``, ``failure.fingerprint`` and
        ``failure.handled`` read the group's own fields; any other name is looked
        up in ``attributes``.
        """
        return value_getter(name)(self)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``failure`` object hooks receive on stdin)."""
        return {
            "fingerprint": self.fingerprint,
            "exception_type": self.exception_type,
            "message": self.message,
            "category": self.category,
            "severity": self.severity,
            "service": self.service,
            "span_name": self.span_name,
            "attributes": {key: _jsonable(value) for key, value in self.attributes.items()},
            "count": self.count,
            "status": self.status,
            "handled": self.handled,
            "last_seen": self.last_seen,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailureFacts:
        """Inverse of :meth:`as_json`; raises KeyError, TypeError or ValueError if malformed."""
        attributes = data.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise TypeError("attributes must be an object")
        last_seen = data.get("last_seen")
        handled = data.get("handled")
        return cls(
            fingerprint=str(data["fingerprint"]),
            exception_type=str(data.get("exception_type", "")),
            message=str(data.get("message", "")),
            category=str(data.get("category", "unknown")),
            severity=str(data.get("severity", "medium")),
            service=str(data.get("service", "")),
            span_name=str(data.get("span_name", "")),
            attributes=MappingProxyType(
                {str(key): _attribute(value) for key, value in attributes.items()}
            ),
            count=int(data.get("count", 1)),
            status=str(data.get("status", "open")),
            handled=None if handled is None else bool(handled),
            last_seen=None if last_seen is None else float(last_seen),
        )

    def wire_attributes(self) -> dict[str, AttributeValue]:
        """The group's attributes as docs/sdk.md and docs/actions.md ("Alerts") name them
        (for alerts)."""
        attributes: dict[str, AttributeValue] = {
            semconv.FAILURE_FINGERPRINT: self.fingerprint,
            semconv.FAILURE_CATEGORY: self.category,
            semconv.FAILURE_SEVERITY: self.severity,
            semconv.FAILURE_COUNT: self.count,
        }
        if self.handled is not None:
            attributes[semconv.FAILURE_HANDLED] = self.handled
        if self.exception_type:
            attributes[semconv.EXCEPTION_TYPE] = self.exception_type
        if self.message:
            attributes[semconv.EXCEPTION_MESSAGE] = self.message
        if self.service:
            attributes[SERVICE_NAME] = self.service
        if self.span_name:
            attributes[SPAN_NAME] = self.span_name
        return attributes

    def summary(self, *, latest: bool = False) -> str:
        """``Type: message`` in one line (for alert bodies and halt reasons); with
        ``latest``, the latest occurrence's message when known (a halt names the failure
        that tripped it), else the group's. Not redacted."""
        message = (self.latest_message or self.message) if latest else self.message
        text = message.splitlines()[0] if message else ""
        if len(text) > 200:
            text = text[:199] + "…"
        name = self.exception_type or "failure"
        return f"{name}: {text}" if text else name


#: Wire names of the group's own fields -> FailureFacts attribute names.
_FIELDS: Final[dict[str, str]] = {
    SERVICE_NAME: "service",
    SPAN_NAME: "span_name",
    semconv.EXCEPTION_TYPE: "exception_type",
    semconv.EXCEPTION_MESSAGE: "message",
    semconv.FAILURE_CATEGORY: "category",
    semconv.FAILURE_SEVERITY: "severity",
    semconv.FAILURE_FINGERPRINT: "fingerprint",
    semconv.FAILURE_HANDLED: "handled",
}


def value_getter(name: str) -> Callable[[FailureFacts], AttributeValue | None]:
    """A fast ``facts.value_of(name)`` for a name known in advance (see :meth:`value_of`)."""
    field_name = _FIELDS.get(name)
    if field_name is None:
        return lambda facts: facts.attributes.get(name)
    get = attrgetter(field_name)

    def group_field(facts: FailureFacts) -> AttributeValue | None:
        value: AttributeValue | None = get(facts)
        return None if value == "" else value

    return group_field


def attribute_text(value: str | bool | int | float) -> str:
    """How attribute values are compared with configured ones: as text
    (``true``/``false``, ``3``, ``0.5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _jsonable(value: AttributeValue) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


def _attribute(value: Any) -> AttributeValue:
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list) and all(isinstance(item, (str, bool, int, float)) for item in value):
        return tuple(value)
    return str(value)
