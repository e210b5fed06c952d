"""The action engine as a processor listener (:class:`ActionListener`).

The processor tells its listeners about committed changes, successes and metrics
(:mod:`faultlens_collector.processor.listeners`); everything about rules is decided
here. :class:`ActionListener` turns the
:class:`~faultlens_collector.groups.model.Change` list of each committed
transaction into
:meth:`~faultlens_collector.actions.ActionEngine.on_group_updated` calls — one per
group per commit. When the configuration has rules or halt rules and a group's
occurrences in one commit came from different *contexts* (service, span name,
``failure.handled``, or an attribute a rule or a halt key names), it makes one call
per context instead, each with the occurrences of that context, so a halt keyed on
``service.name`` counts each service's own failures and a rule for one service is
not missed because the latest occurrence came from another. ``is_new``,
``is_regression`` and ``is_reopened`` go with the first call only.

The :class:`~faultlens_collector.actions.FailureFacts` of a call hold the group's
stored (redacted) type, message, category, severity, count and status, and the
service, span name, attributes, ``handled`` and time of the latest occurrence of
that context.

What ingest extracts for the engine (:attr:`ActionListener.interest`): the
attributes of occurrences only when a rule or a halt rule names an attribute or hooks
(which receive them) are configured; the key fields of spans that ended without
failure only when a halt rule counts *consecutive* failures (:func:`success_fields`),
so the ingest path reads successes only when they matter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Final

from faultlens import semconv
from faultlens.semconv import SERVICE_NAME, SPAN_NAME
from faultlens.shared import report_internal_error
from opentelemetry.util.types import AttributeValue

from faultlens_collector.actions.config import ActionsConfig
from faultlens_collector.actions.engine import ActionEngine
from faultlens_collector.actions.facts import FailureFacts
from faultlens_collector.causes.alerting import Cascade
from faultlens_collector.groups.model import Change, Group, Occurrence, primary_service
from faultlens_collector.groups.store import GroupStore
from faultlens_collector.processor.listeners import Interest, Listener

#: Key fields a halt rule may name that are the same for every occurrence of a group.
_GROUP_FIELDS: Final = frozenset(
    {
        semconv.EXCEPTION_TYPE,
        semconv.EXCEPTION_MESSAGE,
        semconv.FAILURE_CATEGORY,
        semconv.FAILURE_SEVERITY,
        semconv.FAILURE_FINGERPRINT,
    }
)
#: Facts of groups whose ``new_failure`` alert root-cause linking holds, kept at most.
MAX_HELD: Final = 10_000
#: Key fields read from the occurrence itself rather than from its attributes.
_OCCURRENCE_FIELDS: Final = frozenset({SERVICE_NAME, SPAN_NAME, semconv.FAILURE_HANDLED})


def facts_of(group: Group, last: Occurrence) -> FailureFacts:
    """The engine's view of ``group`` updated by occurrences whose latest is ``last``."""
    return _facts(
        group,
        service=last.service,
        span_name=last.span_name,
        attributes=last.attributes,
        handled=last.handled,
        last_seen=last.time_unix_nano,
        latest_message=last.message,
    )


def facts_of_group(group: Group) -> FailureFacts:
    """The engine's view of a stored group with no occurrence at hand (an operator's
    bulk fix): its most frequent service, its first span name, no attributes;
    ``handled`` when all (True) or none (False) of its occurrences were handled."""
    handled: bool | None = None
    if group.handled_count == group.count:
        handled = True
    elif group.handled_count == 0:
        handled = False
    return _facts(
        group,
        service=primary_service(group.service_counts),
        span_name=group.span_names[0] if group.span_names else "",
        attributes={},
        handled=handled,
        last_seen=group.last_seen,
    )


def _facts(
    group: Group,
    *,
    service: str,
    span_name: str,
    attributes: Mapping[str, Any],
    handled: bool | None,
    last_seen: int,
    latest_message: str = "",
) -> FailureFacts:
    # Positional, in field order: one is built for every group of every commit.
    return FailureFacts(
        group.fingerprint,
        group.exception_type,
        group.message,
        group.category,
        group.severity,
        service,
        span_name,
        attributes,
        group.count,
        group.status,
        handled,
        last_seen / 1e9 if last_seen else None,
        latest_message,
    )


def success_fields(config: ActionsConfig) -> tuple[str, ...]:
    """Key fields of the halt rules that count consecutive failures (sorted); empty
    when no rule needs successes."""
    return tuple(
        sorted({name for rule in config.halts if rule.mode == "consecutive" for name in rule.key})
    )


def needs_attributes(config: ActionsConfig) -> bool:
    """Whether occurrences must carry their span's and event's attributes: a rule or a
    halt rule names an attribute, or hooks (which receive them) are configured."""
    return bool(config.hooks or _context_attributes(config))


def _context_attributes(config: ActionsConfig) -> tuple[str, ...]:
    """Attribute names (not group or occurrence fields) that rules or halt rules read."""
    names: set[str] = set()
    for rule in config.halts:
        names.update(rule.key)
        names.update(rule.match.attributes)
    for match in (rule.match for rule in config.rules):
        names.update(match.attributes)
    return tuple(sorted(names - _GROUP_FIELDS - _OCCURRENCE_FIELDS))


def context_of(config: ActionsConfig) -> Callable[[Occurrence], Hashable] | None:
    """What tells occurrences of one group apart for this configuration's rules and halt
    rules — the fields they read (service, span name, ``failure.handled``, attributes) —
    as a function of an occurrence; None when they read none of them."""
    matches = [rule.match for rule in config.rules] + [rule.match for rule in config.halts]
    keys = {name for rule in config.halts for name in rule.key}
    fields = [
        field
        for field, used in (
            ("service", SERVICE_NAME in keys or any(m.services is not None for m in matches)),
            ("span_name", SPAN_NAME in keys or any(m.span_names is not None for m in matches)),
            (
                "handled",
                semconv.FAILURE_HANDLED in keys or any(m.handled is not None for m in matches),
            ),
        )
        if used
    ]
    names = _context_attributes(config)
    if not fields and not names:
        return None
    occurrence_fields = attrgetter(*fields) if fields else None
    if not names:
        return occurrence_fields

    def context(occurrence: Occurrence) -> Hashable:
        attributes: Mapping[str, Any] = occurrence.attributes
        own = occurrence_fields(occurrence) if occurrence_fields is not None else None
        return (own, *(attributes.get(name) for name in names))

    return context


class ActionListener(Listener):
    """One :class:`ActionEngine` as a processor listener; :meth:`shutdown` stops the
    engine. Never raises (the engine's calls do not).

    ``holds`` tells whether root-cause linking holds a new group's ``new_failure``
    alert (it then sends it, or a ``cascade`` alert, through :class:`Announcer`); the
    facts of such a group are kept in ``held`` (shared with the announcer: no store read
    when the alert goes out; at most :data:`MAX_HELD`, the oldest dropped).
    """

    def __init__(
        self,
        engine: ActionEngine,
        *,
        holds: Callable[[str], bool] | None = None,
        held: dict[str, FailureFacts] | None = None,
    ) -> None:
        self.engine = engine
        self._holds = holds
        self.held: dict[str, FailureFacts] = {} if held is None else held
        config = engine.config
        self._context = context_of(config)
        self._interest = Interest(needs_attributes(config), success_fields(config))

    @property
    def interest(self) -> Interest:
        """Attributes when rules, halt rules or hooks need them; success keys when a
        halt rule counts consecutive failures."""
        return self._interest

    def on_success(self, key: Mapping[str, AttributeValue]) -> None:
        self.engine.on_success(key)

    def on_metrics(self, request: Any) -> None:
        self.engine.on_metrics(request)

    def shutdown(self) -> None:
        self.engine.stop()

    def on_commit(self, changes: Sequence[Change]) -> None:
        """One engine update per group (per context, see the module docstring)."""
        for change in changes:
            parts = self._split(change)
            if parts is None:
                self._update(change, change.last, change.occurrences, first=True)
                continue
            first = True
            for count, last in parts:
                self._update(change, last, count, first=first)
                first = False

    def _update(self, change: Change, last: Occurrence, occurrences: int, *, first: bool) -> None:
        is_new = first and change.created
        holds = self._holds
        facts = facts_of(change.group, last)
        held = is_new and holds is not None and holds(facts.fingerprint)
        if held:
            if len(self.held) >= MAX_HELD:
                del self.held[next(iter(self.held))]
            self.held[facts.fingerprint] = facts
        self.engine.on_group_updated(
            facts,
            is_new=is_new,
            is_regression=first and change.regressed,
            is_reopened=first and change.reopened,
            occurrences=occurrences,
            announce=not held,
        )

    def _split(self, change: Change) -> list[tuple[int, Occurrence]] | None:
        """(occurrences, latest occurrence) per context, or None for a single context."""
        batch = change.batch
        context = self._context
        if context is None or len(batch) < 2:
            return None
        first = context(batch[0])
        if all(context(occurrence) == first for occurrence in batch):
            return None
        parts: dict[Hashable, list[Any]] = {}
        for occurrence in batch:
            key = context(occurrence)
            part = parts.get(key)
            if part is None:
                parts[key] = [occurrence.count, occurrence]
            else:
                part[0] += occurrence.count
                if occurrence.time_unix_nano >= part[1].time_unix_nano:
                    part[1] = occurrence
        return [(count, last) for count, last in parts.values()]


class Announcer:
    """Sends what root-cause linking decided about held alerts (its
    :class:`~faultlens_collector.causes.alerting.AlertSink`): a group's ``new_failure``,
    or a root's ``cascade`` alert. The facts of a held group are those kept when it was
    created (``held``, filled by :class:`ActionListener`); a group not held (an old root
    or symptom) is read from the store. Never raises; a group that cannot be read is
    left out.
    """

    def __init__(
        self, engine: ActionEngine, groups: GroupStore, held: dict[str, FailureFacts]
    ) -> None:
        self._engine = engine
        self._groups = groups
        self._held = held

    def new_failure(self, fingerprint: str) -> None:
        facts = self._facts(fingerprint)
        if facts is not None:
            self._engine.announce_new_failure(facts)

    def drop(self, fingerprint: str) -> None:
        self._held.pop(fingerprint, None)
        self._engine.drop_held_alert(fingerprint)

    def cascade(self, cascade: Cascade) -> None:
        facts = self._facts(cascade.root)
        if facts is None:
            return
        if cascade.root_service:
            facts = dataclasses.replace(facts, service=cascade.root_service)
        symptoms = [
            symptom for symptom in map(self._facts, cascade.symptoms) if symptom is not None
        ]
        self._engine.announce_cascade(facts, symptoms, cascade.services, cascade.new)

    def _facts(self, fingerprint: str) -> FailureFacts | None:
        held = self._held.pop(fingerprint, None)
        if held is not None:
            return held
        try:
            return facts_of_group(self._groups.get_group(fingerprint))
        except Exception:
            report_internal_error("actions: reading a group for a held alert")
            return None
