"""The alerts the engine raises, built in one place (docs/actions.md, "Alerts").

Every alert carries ``faultlens.alert.kind`` and ``faultlens.alert.id``; alerts
about a failure group carry the group's ``failure.*`` / ``exception.*``
attributes and ``service.name``. Text that comes from failures (messages) is
redacted here, whatever the processor did before. The alert id names one
occurrence of one condition (``halt:<halt id>``, ``fix_failed:<fix id>``, …).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

from faultlens import semconv
from faultlens.semconv import SERVICE_NAME
from faultlens.shared import Redactor, format_key
from opentelemetry.util.types import AttributeValue

from faultlens_collector.actions.facts import FailureFacts
from faultlens_collector.actions.records import FixRecord, HaltRecord
from faultlens_collector.alerts.records import Alert, AlertSeverity

KIND: Final = "faultlens.alert.kind"
ALERT_ID: Final = "faultlens.alert.id"
LEVEL: Final = "faultlens.alert.level"
RULE_NAME: Final = "faultlens.rule.name"
HOOK_NAME: Final = "faultlens.hook.name"
HOOK_SUCCESS_RATE: Final = "faultlens.hook.success_rate"
HOOK_SAMPLES: Final = "faultlens.hook.samples"
FIX_ID: Final = "faultlens.fix.id"
FIX_REASON: Final = "faultlens.fix.reason"
HALT_ID: Final = "faultlens.halt.id"
HALT_RULE: Final = "faultlens.halt.rule"
HALT_REASON: Final = "faultlens.halt.reason"
HALT_KEY: Final = "faultlens.halt.key"
RATE: Final = "faultlens.rate.per_minute"
RATE_BASELINE: Final = "faultlens.rate.baseline_per_minute"
BREAKER_NAME: Final = "breaker.name"
BREAKER_OPENS: Final = "faultlens.breaker.opens"
SERVICE_INSTANCE: Final = "service.instance.id"
CASCADE_GROUPS: Final = "faultlens.cascade.groups"
CASCADE_SERVICES: Final = "faultlens.cascade.services"
CASCADE_NEW_GROUPS: Final = "faultlens.cascade.new_groups"
#: Symptom groups named one by one in a ``cascade`` alert's body (the attributes list all).
_CASCADE_LISTED: Final = 5


def new_failure_id(fingerprint: str) -> str:
    """The id of a group's ``new_failure`` alert (one per group: the outbox refuses a
    second)."""
    return f"new_failure:{fingerprint}"


class AlertBuilder:
    """Builds each kind of :class:`Alert`; ``redactor`` cleans failure text."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self._redactor = redactor or Redactor()

    def _group(self, facts: FailureFacts) -> dict[str, AttributeValue]:
        attributes = facts.wire_attributes()
        message = attributes.get(semconv.EXCEPTION_MESSAGE)
        if isinstance(message, str):
            attributes[semconv.EXCEPTION_MESSAGE] = self._redactor.redact(message)
        return attributes

    def _summary(self, facts: FailureFacts) -> str:
        service = f" in {facts.service}" if facts.service else ""
        return f"{self._redactor.redact(facts.summary())}{service} [{facts.fingerprint}]"

    @staticmethod
    def _alert(
        kind: str,
        alert_id: str,
        now: float,
        *,
        severity: AlertSeverity,
        body: str,
        attributes: Mapping[str, AttributeValue],
    ) -> Alert:
        return Alert(
            id=alert_id,
            kind=kind,
            created_at=now,
            severity=severity,
            body=body,
            attributes={**attributes, KIND: kind, ALERT_ID: alert_id},
        )

    def new_failure(self, facts: FailureFacts, now: float) -> Alert:
        return self._alert(
            "new_failure",
            new_failure_id(facts.fingerprint),
            now,
            severity=_severity(facts.severity),
            body=f"new failure: {self._summary(facts)}",
            attributes=self._group(facts),
        )

    def cascade(
        self,
        root: FailureFacts,
        symptoms: Sequence[FailureFacts],
        services: Sequence[str],
        new: Sequence[str],
        now: float,
    ) -> Alert:
        """A root took other groups down (``symptoms``, in ``services``); ``new`` are
        the symptom groups first seen with it (their own ``new_failure`` is not sent)."""
        listed = "; ".join(
            f"{self._redactor.redact(symptom.summary())} in {symptom.service} "
            f"[{symptom.fingerprint}]"
            for symptom in symptoms[:_CASCADE_LISTED]
        )
        more = len(symptoms) - _CASCADE_LISTED
        if more > 0:
            listed += f"; and {more} more"
        where = ", ".join(services)
        return self._alert(
            "cascade",
            f"cascade:{root.fingerprint}:{_millis(now)}",
            now,
            severity=_severity(semconv.max_severity(root.severity, "high")),
            body=f"cascade: {self._summary(root)} took down {len(symptoms)} "
            f"group{'s' if len(symptoms) != 1 else ''} in {where}: {listed}",
            attributes={
                **self._group(root),
                CASCADE_GROUPS: tuple(symptom.fingerprint for symptom in symptoms),
                CASCADE_SERVICES: tuple(services),
                CASCADE_NEW_GROUPS: tuple(new),
            },
        )

    def regression(self, facts: FailureFacts, now: float) -> Alert:
        return self._alert(
            "regression",
            f"regression:{facts.fingerprint}:{_millis(now)}",
            now,
            severity=_severity(semconv.max_severity(facts.severity, "medium")),
            body=f"regression: {self._summary(facts)} is back",
            attributes=self._group(facts),
        )

    def reopened(self, facts: FailureFacts, now: float) -> Alert:
        """A dismissed group whose dismissal lapsed when its rate passed the operator's
        limit."""
        return self._alert(
            "reopened",
            f"reopened:{facts.fingerprint}:{_millis(now)}",
            now,
            severity=_severity(semconv.max_severity(facts.severity, "medium")),
            body=f"reopened: {self._summary(facts)} was dismissed and came back above the "
            "rate it was dismissed for",
            attributes=self._group(facts),
        )

    def rule_match(self, rule: str, facts: FailureFacts, now: float) -> Alert:
        return self._alert(
            "rule_match",
            f"rule_match:{rule}:{facts.fingerprint}:{_millis(now)}",
            now,
            severity=_severity(facts.severity),
            body=f"rule {rule} matched: {self._summary(facts)}",
            attributes={**self._group(facts), RULE_NAME: rule},
        )

    def halt(self, halt: HaltRecord, facts: FailureFacts | None, now: float) -> Alert:
        attributes = self._group(facts) if facts is not None else {}
        attributes.update(
            {
                HALT_ID: halt.id,
                HALT_RULE: halt.rule,
                HALT_REASON: self._redactor.redact(halt.reason),
                HALT_KEY: json.dumps(halt.attributes, sort_keys=True),
            }
        )
        service = halt.attributes.get(SERVICE_NAME)
        if isinstance(service, str):
            attributes[SERVICE_NAME] = service
        return self._alert(
            "halt",
            f"halt:{halt.id}",
            now,
            severity="critical",
            body=f"halted {format_key(halt.attributes)} ({halt.rule}): "
            f"{self._redactor.redact(halt.reason)}",
            attributes=attributes,
        )

    def fix_failed(self, fix: FixRecord, facts: FailureFacts, now: float) -> Alert:
        return self._alert(
            "fix_failed",
            f"fix_failed:{fix.id}",
            now,
            severity="high",
            body=f"fix {fix.hook} (rule {fix.rule}) failed: {fix.reason}: {self._summary(facts)}",
            attributes={
                **self._group(facts),
                HOOK_NAME: fix.hook,
                RULE_NAME: fix.rule,
                FIX_ID: fix.id,
                FIX_REASON: fix.reason,
            },
        )

    def fix_ineffective(
        self, hook: str, level: str, success_rate: float, samples: int, now: float
    ) -> Alert:
        return self._alert(
            "fix_ineffective",
            f"fix_ineffective:{hook}:{level}:{_millis(now)}",
            now,
            severity="critical" if level == "critical" else "high",
            body=f"hook {hook} fixed only {success_rate:.0%} of its last {samples} groups "
            f"({level})",
            attributes={
                HOOK_NAME: hook,
                LEVEL: level,
                HOOK_SUCCESS_RATE: success_rate,
                HOOK_SAMPLES: samples,
            },
        )

    def breaker_open(
        self, service: str, instance: str, breaker: str, opens: int, now: float
    ) -> Alert:
        attributes: dict[str, AttributeValue] = {BREAKER_NAME: breaker, BREAKER_OPENS: opens}
        if service:
            attributes[SERVICE_NAME] = service
        if instance:
            attributes[SERVICE_INSTANCE] = instance
        where = f" in {service}" if service else ""
        return self._alert(
            "breaker_open",
            f"breaker_open:{service}/{instance}/{breaker}:{_millis(now)}",
            now,
            severity="high",
            body=f"circuit breaker {breaker}{where} opened",
            attributes=attributes,
        )

    def rate_spike(
        self,
        facts: FailureFacts,
        bucket_start: float,
        per_minute: float,
        baseline: float,
        now: float,
    ) -> Alert:
        return self._alert(
            "rate_spike",
            f"rate_spike:{facts.fingerprint}:{_millis(bucket_start)}",
            now,
            severity=_severity(semconv.max_severity(facts.severity, "high")),
            body=f"rate spike: {per_minute:.1f}/min against a baseline of {baseline:.1f}/min: "
            f"{self._summary(facts)}",
            attributes={**self._group(facts), RATE: per_minute, RATE_BASELINE: baseline},
        )


def _severity(name: str) -> AlertSeverity:
    if name == "low":
        return "low"
    if name == "high":
        return "high"
    if name == "critical":
        return "critical"
    return "medium"


def _millis(seconds: float) -> int:
    return int(seconds * 1000)
