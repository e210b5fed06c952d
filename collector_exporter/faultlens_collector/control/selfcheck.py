"""The processor's side of ``faultlens check``: the ``faultlens.v1.SelfCheck`` service.

A check runs the real data path with a marked synthetic failure, then leaves no
trace of it but one operator-log entry:

1. ``Begin`` opens a check: a fresh random id, and the fingerprint its synthetic
   failure must carry (derived from the id, so it names no real defect).
2. The client sends that failure over OTLP like any application would. Ingest,
   grouping and the store treat it as any failure; after the commit,
   :meth:`SelfChecks.intercept` takes the check's group out of what goes to the
   action engine, so no hook runs, no halt counts it and no alert is raised.
3. ``End`` reports what would have happened — the stored group, the rules that
   match it, the verdict on each fix hook they name
   (:meth:`~faultlens_collector.actions.ActionEngine.dry_run`), the alert kinds
   it would have raised, and whether the alert target answers an empty OTLP
   export — then removes the group and logs one operator action ``check``
   (its detail: the check id and the outcome).

Only a control-API caller (token, TLS) can open a check; nothing on the OTLP
wire can make a failure synthetic. A check not ended within ``expires_seconds``
is ended by :meth:`SelfChecks.sweep` (the processor's maintenance thread), and a
late duplicate of a synthetic failure (an exporter's retry) is removed for
another ten minutes.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc
from faultlens.shared import hash_parts

from faultlens_collector._proto.faultlens.v1 import check_pb2
from faultlens_collector.actions import ActionEngine
from faultlens_collector.actions.listener import facts_of, facts_of_group
from faultlens_collector.control.rpc import unary, who
from faultlens_collector.control.serving import serving_handler
from faultlens_collector.groups.model import Change
from faultlens_collector.groups.store import GroupNotFound, GroupStore, OperatorAction

SERVICE: Final = "faultlens.v1.SelfCheck"
#: Seconds a check stays open without ``End``.
DEFAULT_EXPIRY: Final = 120.0
#: Seconds a late copy of an ended check's failure is still removed.
TOMBSTONE_SECONDS: Final = 600.0
#: Checks open at once; more are refused (RESOURCE_EXHAUSTED).
MAX_OPEN: Final = 64


@dataclass(slots=True)
class _Check:
    id: str
    fingerprint: str
    opened: float
    actor: str
    change: Change | None = None
    created: bool = False


class SelfChecks:
    """Open checks over one store and engine, and their RPCs."""

    def __init__(
        self,
        store: GroupStore,
        engine: ActionEngine,
        *,
        expiry: float = DEFAULT_EXPIRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._engine = engine
        self._expiry = expiry
        self._clock = clock
        self._lock = threading.Lock()
        self._by_fingerprint: dict[str, _Check] = {}
        self._by_id: dict[str, _Check] = {}
        self._tombstones: dict[str, float] = {}

    # the writer's side (on the committing thread: cheap when no check is open)
    def intercept(self, changes: Sequence[Change]) -> Sequence[Change]:
        """``changes`` without those of open (or recently ended) checks' groups."""
        if not self._by_fingerprint and not self._tombstones:
            return changes
        kept: list[Change] = []
        with self._lock:
            for change in changes:
                fingerprint = change.group.fingerprint
                check = self._by_fingerprint.get(fingerprint)
                if check is not None:
                    check.created = check.created or change.created
                    check.change = change
                elif fingerprint not in self._tombstones:
                    kept.append(change)
        return kept

    # the RPCs
    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """The generic handler serving ``faultlens.v1.SelfCheck``."""
        methods = {
            "Begin": unary(self.begin, check_pb2.BeginCheckRequest, check_pb2.CheckTicket),
            "End": unary(self.end, check_pb2.EndCheckRequest, check_pb2.CheckReport),
        }
        return [
            grpc.method_handlers_generic_handler(
                SERVICE,
                {name: serving_handler(name, handler) for name, handler in methods.items()},
            )
        ]

    def begin(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Begin: open a check."""
        actor, _ = who(request.actor, context)
        check_id = secrets.token_hex(8)
        check = _Check(check_id, hash_parts(("faultlens-check", check_id)), self._clock(), actor)
        with self._lock:
            if len(self._by_id) >= MAX_OPEN:
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{MAX_OPEN} checks are open already; retry later",
                )
            self._by_id[check_id] = check
            self._by_fingerprint[check.fingerprint] = check
        return check_pb2.CheckTicket(
            id=check_id, fingerprint=check.fingerprint, expires_seconds=int(self._expiry)
        )

    def end(self, request: Any, context: grpc.ServicerContext) -> Any:
        """End: report on the check's group and remove it."""
        with self._lock:
            check = self._by_id.get(request.id.strip())
        if check is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no open check has id {request.id!r}")
            raise AssertionError("unreachable: abort raises")
        actor, peer = who(request.actor, context)
        return self._finish(check, actor, peer)

    def sweep(self) -> None:
        """End checks open for longer than their expiry; remove late copies of ended
        checks' failures; forget tombstones that lapsed."""
        now = self._clock()
        with self._lock:
            expired = [c for c in self._by_id.values() if now - c.opened > self._expiry]
            for fingerprint in [f for f, until in self._tombstones.items() if until < now]:
                del self._tombstones[fingerprint]
            late = list(self._tombstones)
        for check in expired:
            self._finish(check, check.actor, "expired")
        if late and self._store.missing(late) != late:
            self._store.remove_groups(
                late, OperatorAction("check", "faultlens", "", {"late_copies_removed": True})
            )

    def _finish(self, check: _Check, actor: str, peer: str) -> Any:
        report = self._report(check)
        with self._lock:
            if self._by_id.pop(check.id, None) is None:
                return report  # ended meanwhile by another caller
            self._tombstones[check.fingerprint] = self._clock() + TOMBSTONE_SECONDS
            del self._by_fingerprint[check.fingerprint]
        removed, logged = self._store.remove_groups(
            [check.fingerprint],
            OperatorAction(
                "check",
                actor,
                peer,
                {
                    "id": check.id,
                    "grouped": report.grouped,
                    "rules": list(report.rules),
                    "hooks_would_run": [h.hook for h in report.hooks if h.would_run],
                    "alert_target_answered": report.alert_target_answered,
                    **({"expired": True} if peer == "expired" else {}),
                },
            ),
        )
        report.removed = removed == int(report.grouped)
        report.action_id = logged.id
        return report

    def _report(self, check: _Check) -> Any:
        report = check_pb2.CheckReport()
        try:
            group = self._store.get_group(check.fingerprint)
        except GroupNotFound:
            group = None
        if group is not None and group.fingerprint == check.fingerprint:
            report.grouped = True
            report.occurrences = group.count
            report.status = group.status
            report.category = group.category
            change = check.change
            facts = facts_of(group, change.last) if change is not None else facts_of_group(group)
            plan = self._engine.dry_run(facts, is_new=check.created or change is None)
            report.rules.extend(plan.rules)
            report.hooks.extend(
                check_pb2.HookDryRun(rule=rule, hook=hook, would_run=would_run, detail=detail)
                for rule, hook, would_run, detail in plan.hooks
            )
            report.alert_kinds.extend(plan.alerts)
        target, answered, detail = self._engine.probe_alerts()
        report.alert_target = target
        report.alert_target_answered = answered
        report.alert_detail = detail
        return report
