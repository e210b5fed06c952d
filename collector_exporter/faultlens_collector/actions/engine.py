"""The action engine: the one object the processor talks to.

::

    engine = ActionEngine(load_config(path), open_database(store_path).action_store(),
                          alerts_endpoint="collector:4317")
    engine.start()
    ...
    # after a failure group was updated (and stored):
    engine.on_group_updated(facts, is_new=created, is_regression=reopened, occurrences=n)
    # for a span that ended without failure, if the processor sees any:
    engine.on_success({"service.name": "payments", "span.name": "charge"})
    # for every ExportMetricsServiceRequest received:
    engine.on_metrics(request)
    ...
    engine.stop()

What runs on the caller's thread is in-memory work — rule matching, counting,
cooldown checks, queueing — plus a synchronous store write only for rare state
changes that must not be lost: an alert raised, a halt started, a fix decided
by a recurrence, an ``at_least_once`` job queued. Hooks run on worker threads,
alerts are sent from their own thread, and a maintenance thread verifies fixes
whose window passed. None of these calls raises: an internal error is logged
once and the call returns.

On a store shared by several processors (``store.shared``: the PostgreSQL backend),
a follower thread polls the store's change versions every :data:`FOLLOW_INTERVAL`
seconds and reads again what another processor changed: the halts in force (so SDK
guards connected to this processor learn a halt started on another within about a
second), the raised conditions and the fixes. The store itself decides what must
happen once in the fleet (:mod:`faultlens_collector.actions.store`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faultlens import semconv
from faultlens.shared import KeyValue, Redactor, report_internal_error
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import AttributeValue

from faultlens_collector.actions.alerting import AlertBuilder, new_failure_id
from faultlens_collector.actions.breakers import BreakerWatch
from faultlens_collector.actions.broadcast import Broadcast, Subscription
from faultlens_collector.actions.conditions import ConditionLatch
from faultlens_collector.actions.config import ActionsConfig, RuleConfig
from faultlens_collector.actions.executor import HookExecutor, Submitted
from faultlens_collector.actions.facts import SILENT_STATUSES, FailureFacts
from faultlens_collector.actions.halting import HaltChange, HaltEngine
from faultlens_collector.actions.hookstats import HookStats, register_instruments
from faultlens_collector.actions.matching import RuleSet
from faultlens_collector.actions.rates import RateSpikeDetector
from faultlens_collector.actions.records import (
    AuditRecord,
    HaltRecord,
    HookJob,
    HookRun,
    new_id,
)
from faultlens_collector.actions.store import ActionStore, MemoryActionStore
from faultlens_collector.actions.verification import Effectiveness, FixVerifier
from faultlens_collector.alerts.records import Alert
from faultlens_collector.alerts.sender import DEFAULT_RESOURCE, AlertSender, otlp_log_exporter
from faultlens_collector.delivery import OutageLog
from faultlens_collector.store.errors import StoreError

#: Alerts the engine remembers for ListAlerts.
RECENT_ALERTS = 1000

#: Alert kinds filtered by ``[alerts] min_severity`` (they are about one group's severity).
_log = logging.getLogger("faultlens.actions")
_GROUP_ALERTS = frozenset(
    {"new_failure", "regression", "reopened", "rate_spike", "rule_match", "cascade"}
)
_HOUSEKEEPING_SECONDS = 3600.0
#: How often (seconds) an engine on a shared store looks for other processors' changes.
FOLLOW_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class DryRun:
    """What the engine would do for one group update (:meth:`ActionEngine.dry_run`):
    matching rules, ``(rule, hook, would_run, detail)`` per fix hook, alert kinds."""

    rules: tuple[str, ...]
    hooks: tuple[tuple[str, str, bool, str], ...]
    alerts: tuple[str, ...]


class ActionEngine:
    """Rules, hooks, fix verification, halts and alerts for one processor.

    ``alerts_endpoint`` (or ``[alerts] target`` in the configuration) is where
    alerts go, as OTLP log records; ``alert_exporter`` replaces the OTLP
    exporter (any ``LogRecordExporter``). Without either, alerts are only
    published to :meth:`subscribe_alerts` subscribers and not stored.
    """

    def __init__(
        self,
        config: ActionsConfig | None = None,
        store: ActionStore | None = None,
        *,
        alerts_endpoint: str | None = None,
        alert_exporter: LogRecordExporter | None = None,
        clock: Callable[[], float] = time.time,
        meter_provider: MeterProvider | None = None,
        redactor: Redactor | None = None,
        resource: Resource = DEFAULT_RESOURCE,
        sender_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config or ActionsConfig()
        self.store: ActionStore = store if store is not None else MemoryActionStore()
        self._clock = clock
        redactor = redactor or Redactor()
        alerts_config = self.config.alerts
        self._alerts = AlertBuilder(redactor)
        self._min_alert_rank = semconv.SEVERITY_RANK[alerts_config.min_severity]
        self._rules: RuleSet[RuleConfig] = RuleSet([(r.match, r) for r in self.config.rules])
        self._alerting_rules = tuple(rule.name for rule in self.config.rules if rule.alert)
        self._halt_hooks = {rule.name: rule.hooks for rule in self.config.halts}
        self._needs_successes = any(rule.mode == "consecutive" for rule in self.config.halts)
        self.stats = HookStats()
        self.latch = ConditionLatch(self.store)
        #: How long a held ``new_failure`` alert waits in the outbox before it is sent as
        #: it stands (root-cause linking decides sooner; this covers a processor that died
        #: holding it). The processor sets it from its linking window.
        self.held_alert_seconds = 60.0
        self.verifier = FixVerifier(
            self.store,
            self.config.effectiveness,
            self.config.hooks,
            self.config.engine.verification_window,
            latch=self.latch,
            alerts=self._alerts,
            emit=self._emit,
            stats=self.stats,
        )
        self.executor = HookExecutor(
            self.config.hooks,
            self.config.engine,
            self.store,
            clock=clock,
            stats=self.stats,
            on_finished=self.verifier.fix_finished,
            redactor=redactor,
        )
        self.halts = HaltEngine(self.config.halts, self.store, redactor=redactor)
        spike = alerts_config.rate_spike
        self._rates = RateSpikeDetector(spike) if spike.enabled else None
        self._breakers = BreakerWatch(self.latch, started_at_ns=int(clock() * 1e9))
        self.alert_broadcast: Broadcast[Alert] = Broadcast()
        #: The most recent alerts raised (for the control API's ListAlerts), oldest first.
        self.recent_alerts: deque[Alert] = deque(maxlen=RECENT_ALERTS)
        endpoint = alerts_endpoint or alerts_config.target
        #: Where alerts are exported to (None: nowhere, or a given ``alert_exporter``).
        self.alerts_target = endpoint if alert_exporter is None else None
        if alert_exporter is None and endpoint:
            alert_exporter = otlp_log_exporter(
                endpoint, insecure=alerts_config.insecure, headers=alerts_config.headers
            )
        self.sender = (
            None
            if alert_exporter is None
            else AlertSender(
                self.store,
                alert_exporter,
                clock=clock,
                resource=resource,
                **dict(sender_options or {}),
            )
        )
        register_instruments(
            self.stats, self.verifier, lambda: self.executor.queued, meter_provider
        )
        self._stop = threading.Event()
        self._maintenance: threading.Thread | None = None
        self._follower: threading.Thread | None = None
        self._versions: dict[str, int] = {}
        self._following = OutageLog(_log, "following the other processors")
        self._maintaining = OutageLog(_log, "action maintenance")
        self._last_housekeeping = 0.0

    # lifecycle
    def start(self) -> None:
        """Load persisted state (halts, pending fixes, cooldowns, queued jobs) and start
        the hook workers, the alert sender and the maintenance thread."""
        self.verifier.load()
        self.halts.load()
        if not self.store.shared:  # what a run before held (it was killed) goes out now
            try:
                self.store.release_held_alerts()
            except Exception:
                report_internal_error("actions: releasing held alerts")
        self.executor.start()
        if self.sender is not None:
            self.sender.start()
        self._maintenance = threading.Thread(
            target=self._maintain, name="faultlens-actions", daemon=True
        )
        self._maintenance.start()
        if self.store.shared:
            self._versions = self.store.versions()  # what was just loaded
            self._follower = threading.Thread(
                target=self._follow, name="faultlens-fleet", daemon=True
            )
            self._follower.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every thread; running hooks get ``timeout`` / 2 to finish before they are
        killed. Unsent alerts and ``at_least_once`` jobs stay in the store."""
        self._stop.set()
        for thread in (self._maintenance, self._follower):
            if thread is not None:
                thread.join(timeout)
        self._maintenance = self._follower = None
        self.executor.stop(timeout)
        if self.sender is not None:
            self.sender.stop(timeout)

    def __enter__(self) -> ActionEngine:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # what the processor calls
    def on_group_updated(
        self,
        facts: FailureFacts,
        *,
        is_new: bool = False,
        is_regression: bool = False,
        is_reopened: bool = False,
        occurrences: int = 1,
        announce: bool = True,
    ) -> None:
        """A failure group was created or updated with ``occurrences`` new occurrences.

        ``is_new``: the group did not exist before (``new_failure`` alert; unless
        ``announce`` is false: then root-cause linking holds it — it is written to the
        outbox held for :attr:`held_alert_seconds` — and calls :meth:`announce_new_failure`
        or :meth:`drop_held_alert` / :meth:`announce_cascade` later);
        ``is_regression``: it had been resolved and occurred again (``regression``
        alert; rule alerts for the group re-arm); ``is_reopened``: it had been
        dismissed until its rate passed a limit, and it did (``reopened`` alert;
        rule alerts re-arm). Never raises.
        """
        try:
            now = self._clock()
            if is_new:
                alert = self._alerts.new_failure(facts, now)
                self._emit(alert, held_until=None if announce else now + self.held_alert_seconds)
            if is_regression or is_reopened:
                self.latch.clear(
                    f"rule_match:{rule}:{facts.fingerprint}" for rule in self._alerting_rules
                )
            if is_regression:
                self._emit(self._alerts.regression(facts, now))
            if is_reopened:
                self._emit(self._alerts.reopened(facts, now))
            self.verifier.on_occurrence(facts, now)
            for halt in self.halts.on_failure(facts, occurrences, now):
                self._halted(halt, facts, now)
            if facts.status in SILENT_STATUSES:
                return
            if self._rates is not None:
                spike = self._rates.observe(facts.fingerprint, occurrences, now)
                if spike is not None:
                    self._emit(
                        self._alerts.rate_spike(
                            facts,
                            spike.bucket_start,
                            spike.per_minute,
                            spike.baseline_per_minute,
                            now,
                        )
                    )
            matched = self._rules.matches(facts)
            if matched:
                self._apply(matched, facts, now)
        except Exception:
            report_internal_error("actions: on_group_updated")

    def _apply(self, rules: tuple[RuleConfig, ...], facts: FailureFacts, now: float) -> None:
        """Alerts and fix hooks of the matching rules; a hook named by several of them runs
        once, for the first."""
        started: set[str] = set()
        for rule in rules:
            if rule.alert and self.latch.raise_(f"rule_match:{rule.name}:{facts.fingerprint}", now):
                self._emit(self._alerts.rule_match(rule.name, facts, now))
            for hook in rule.fix:
                if hook in started or self.executor.cooling(hook, facts.fingerprint, now):
                    continue
                started.add(hook)
                self.executor.submit(HookJob(new_id(), hook, rule.name, "fix", facts, now))

    def _halted(self, halt: HaltRecord, facts: FailureFacts | None, now: float) -> None:
        self._emit(self._alerts.halt(halt, facts, now))
        if facts is None:
            return
        for hook in self._halt_hooks.get(halt.rule, ()):
            job = HookJob(new_id(), hook, halt.rule, "halt", facts, now, halt=halt)
            self.executor.submit(job, cooldown=False)

    def holds_new_alerts(self) -> bool:
        """Whether root-cause linking may hold ``new_failure`` alerts: only when both
        ``new_failure`` and ``cascade`` alerts are sent (a held alert is sent as one or
        the other)."""
        kinds = self.config.alerts.kinds
        return "new_failure" in kinds and "cascade" in kinds

    def announce_new_failure(self, facts: FailureFacts) -> None:
        """Send the ``new_failure`` alert held for a group that turned out to be neither
        a symptom nor a root of others (released from the outbox; written now if it was
        not held there). Never raises."""
        try:
            alert = self._alerts.new_failure(facts, self._clock())
            if not self._admits(alert.kind, facts.severity):
                return
            if self.sender is not None and self.store.settle_held_alert(alert.id, send=True):
                self.sender.wake()
                self._published(alert)
            else:
                self._emit(alert)
        except Exception:
            report_internal_error("actions: announce_new_failure")

    def drop_held_alert(self, fingerprint: str) -> None:
        """Forget the ``new_failure`` alert held for a group that turned out to be a
        symptom (its root's ``cascade`` alert, sent or sent before, tells). Never raises."""
        try:
            if self.sender is not None:
                self.store.settle_held_alert(new_failure_id(fingerprint), send=False)
        except Exception:
            report_internal_error("actions: drop_held_alert")

    def announce_cascade(
        self,
        root: FailureFacts,
        symptoms: Sequence[FailureFacts],
        services: Sequence[str],
        new: Sequence[str],
    ) -> None:
        """Send a ``cascade`` alert: ``root`` took ``symptoms`` down in ``services``
        (``new``: the symptom groups first seen with it). Never raises."""
        try:
            self._emit(self._alerts.cascade(root, symptoms, services, new, self._clock()))
        except Exception:
            report_internal_error("actions: announce_cascade")

    def on_success(self, attributes: Mapping[str, AttributeValue]) -> None:
        """A span ended without failure: reset the consecutive-failure streaks of the
        keys it belongs to (``service.name``, ``span.name`` and its attributes).

        Cheap when no halt rule counts consecutive failures; otherwise call it once per
        distinct key per request rather than per span. Never raises.
        """
        if not self._needs_successes:
            return
        try:
            self.halts.on_success(attributes)
        except Exception:
            report_internal_error("actions: on_success")

    def on_metrics(self, request: Any) -> None:
        """An ``ExportMetricsServiceRequest`` arrived: alert circuit breakers that opened.
        Never raises."""
        try:
            now = self._clock()
            for opened in self._breakers.observe(request, now):
                breaker = opened.breaker
                self._emit(
                    self._alerts.breaker_open(
                        breaker.service, breaker.instance, breaker.breaker, opened.opens, now
                    )
                )
        except Exception:
            report_internal_error("actions: on_metrics")

    def dry_run(self, facts: FailureFacts, *, is_new: bool) -> DryRun:
        """What :meth:`on_group_updated` would do for ``facts``, doing none of it: the
        rules that match, the fix hooks they name with
        :meth:`~faultlens_collector.actions.executor.HookExecutor.plan`'s verdict, and
        the kinds of the alerts raised (``new_failure`` for a new group, ``rule_match``).
        Halts, rate spikes and fix verification are left out: they need history."""
        now = self._clock()
        alerts: list[str] = []
        if is_new and self._admits("new_failure", facts.severity):
            alerts.append("new_failure")
        rules = () if facts.status in SILENT_STATUSES else self._rules.matches(facts)
        hooks: list[tuple[str, str, bool, str]] = []
        started: set[str] = set()
        for rule in rules:
            if rule.alert and self._admits("rule_match", facts.severity):
                alerts.append("rule_match")
            for hook in rule.fix:
                if hook in started:
                    hooks.append((rule.name, hook, False, "runs once, for an earlier rule"))
                    continue
                started.add(hook)
                hooks.append((rule.name, hook, *self.executor.plan(hook, facts.fingerprint, now)))
        return DryRun(tuple(rule.name for rule in rules), tuple(hooks), tuple(alerts))

    def probe_alerts(self) -> tuple[str, bool, str]:
        """The alert target, whether it answered an empty export, and the detail; an
        empty target when alerts only go to :meth:`subscribe_alerts` subscribers."""
        if self.sender is None:
            return "", True, "no alert target: alerts go to StreamAlerts followers only"
        answered, detail = self.sender.probe()
        return self.alerts_target or "the configured alert exporter", answered, detail

    # alerts
    def _admits(self, kind: str, severity: object) -> bool:
        """Whether an alert of ``kind`` about a group of ``severity`` passes the
        ``[alerts]`` filters (``kinds``, ``min_severity``)."""
        if kind not in self.config.alerts.kinds:
            return False
        return kind not in _GROUP_ALERTS or (
            semconv.SEVERITY_RANK.get(str(severity), 0) >= self._min_alert_rank
        )

    def _emit(self, alert: Alert, *, held_until: float | None = None) -> None:
        """Raise ``alert`` if the ``[alerts]`` filters admit it: into the outbox (held
        until ``held_until``, and then not yet shown, when given), the recent alerts and
        the alert stream."""
        if not self._admits(alert.kind, alert.attributes.get(semconv.FAILURE_SEVERITY)):
            return
        if held_until is not None:
            if self.sender is not None:
                self.store.hold_alert(alert, held_until)
            return
        if self.sender is not None:
            if not self.store.add_alert(alert):
                return  # this occurrence was alerted already
            self.sender.wake()
        self._published(alert)

    def _published(self, alert: Alert) -> None:
        self.recent_alerts.append(alert)
        self.alert_broadcast.publish(alert)

    def subscribe_alerts(self) -> Subscription[Alert]:
        """Every alert raised from now on (for the control API's alert stream)."""
        return self.alert_broadcast.subscribe()

    # operator actions (control API, CLI)
    def run_hook(self, hook: str, facts: FailureFacts, *, requested_by: str) -> Submitted:
        """Run ``hook`` for one group now (bulk fix): no cooldown; verified like any fix.
        Raises ValueError for a hook the configuration does not define."""
        if hook not in self.config.hooks:
            raise ValueError(f"no hook named {hook!r} in {self.config.source}")
        job = HookJob(new_id(), hook, "", "manual", facts, self._clock(), requested_by=requested_by)
        return self.executor.submit(job, cooldown=False)

    def halts_in_force(self) -> list[HaltRecord]:
        return self.halts.active()

    def halt(self, key: Mapping[str, KeyValue], reason: str, *, by: str) -> HaltRecord:
        """Halt ``key`` by hand (sends the ``halt`` alert); an existing manual halt of
        the same key is returned as it is."""
        halt, started = self.halts.halt(key, f"{reason} (by {by})", now=self._clock())
        if started:
            self._halted(halt, None, halt.since)
        return halt

    def resume(
        self,
        *,
        halt_id: str | None = None,
        key: Mapping[str, KeyValue] | None = None,
        by: str,
    ) -> list[HaltRecord]:
        """Lift a halt by id, or every halt on exactly ``key``; returns those lifted."""
        return self.halts.resume(halt_id=halt_id, key=key, by=by, now=self._clock())

    def subscribe_halts(self) -> Subscription[HaltChange]:
        """A snapshot of the halts in force, then every change (for SDK guards)."""
        return self.halts.subscribe()

    def effectiveness(self) -> dict[str, Effectiveness]:
        """Each configured hook's recent fix record."""
        return {hook: self.verifier.report(hook) for hook in self.config.hooks}

    def audit(
        self, *, fingerprint: str | None = None, hook: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        return self.store.audit_records(fingerprint=fingerprint, hook=hook, limit=limit)

    def hook_runs(
        self, *, fingerprint: str | None = None, hook: str | None = None, limit: int = 100
    ) -> list[HookRun]:
        """Hook executions, newest first (as :meth:`audit`), each with its fix's
        verification state."""
        return self._with_fixes(self.audit(fingerprint=fingerprint, hook=hook, limit=limit))

    def hook_runs_by_group(
        self, fingerprints: Sequence[str], per_group: int = 20
    ) -> dict[str, list[HookRun]]:
        """Each named group's newest ``per_group`` hook runs with their fixes' state
        (groups without runs left out); two store queries whatever the number of groups."""
        by_group = self.store.audit_records_by_group(fingerprints, per_group)
        fixes = self.store.fixes_by_id([r.id for records in by_group.values() for r in records])
        return {
            group: [HookRun(record, fixes.get(record.id)) for record in records]
            for group, records in by_group.items()
        }

    def _with_fixes(self, records: list[AuditRecord]) -> list[HookRun]:
        fixes = self.store.fixes_by_id([record.id for record in records])
        return [HookRun(record, fixes.get(record.id)) for record in records]

    # maintenance
    def tick(self) -> None:
        """Verify fixes whose window passed, re-queue deferred jobs, write pending audit
        records; hourly, prune expired cooldowns and old sent alerts. Run by the
        maintenance thread every ``tick_interval``; tests call it directly."""
        now = self._clock()
        self.verifier.tick(now)
        self.executor.sweep()
        if now - self._last_housekeeping >= _HOUSEKEEPING_SECONDS:
            self._last_housekeeping = now
            self.store.prune_cooldowns(now)
            self.store.prune_sent_alerts(now - self.config.alerts.retention)

    def follow(self) -> None:
        """Read again what other processors changed in a shared store since the last
        call: halts (published to halt subscribers), raised conditions, fixes. Run by
        the follower thread every :data:`FOLLOW_INTERVAL`; tests call it directly."""
        versions = self.store.versions()
        changed = {
            topic for topic, version in versions.items() if self._versions.get(topic) != version
        }
        self._versions = versions
        if "halts" in changed:
            self.halts.sync()
        if "conditions" in changed:
            self.latch.reload()
        if "fixes" in changed:
            self.verifier.load()

    def _follow(self) -> None:
        while not self._stop.wait(FOLLOW_INTERVAL):
            try:
                self.follow()
            except StoreError as exc:
                self._following.failed(exc)
                self._versions = {}  # read everything again once the store answers
                continue
            except Exception:
                report_internal_error("actions: following the other processors")
                continue
            self._following.worked()

    def _maintain(self) -> None:
        while not self._stop.wait(self.config.engine.tick_interval):
            try:
                self.tick()
            except StoreError as exc:
                self._maintaining.failed(exc)
                continue
            except Exception:
                report_internal_error("actions: maintenance")
                continue
            self._maintaining.worked()
