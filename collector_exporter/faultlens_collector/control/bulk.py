"""Bulk triage over the control API: Dismiss, Categorize, Resolve, Reopen, Fix, ListAudit.

Each call selects groups with a ``GroupSelection`` — fingerprints (or unique
prefixes), a filter, or both (the named groups that match the filter); an
empty selection must say ``all`` — and acts on all of them in one store
transaction that also writes the operator log entry (who: the request's
``actor`` and the peer address; what: the action and its arguments; when; how
many groups, and which). ``dry_run`` only counts. Any unknown fingerprint fails
the whole call with ``NOT_FOUND`` and changes nothing, so a typo never acts on
fewer groups than meant.

Fix queues the named configured hook once per selected group through
:meth:`~faultlens_collector.actions.ActionEngine.run_hook` (no cooldown,
verified like any fix); jobs beyond the hook queue's room are dropped, counted in
the reply and audited as dropped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

import grpc
from faultlens import semconv

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions import ActionEngine
from faultlens_collector.actions.listener import facts_of_group
from faultlens_collector.causes.view import LinkView
from faultlens_collector.control.convert import operator_action_message
from faultlens_collector.control.groups import query_of
from faultlens_collector.control.methods import LATEST_TIME, MAX_INT64
from faultlens_collector.control.rpc import (
    MAX_NAME,
    MAX_REASON,
    at_most,
    invalid,
    unary,
    who,
)
from faultlens_collector.groups.model import Dismissal
from faultlens_collector.groups.store import (
    AmbiguousFingerprint,
    GroupNotFound,
    GroupQuery,
    GroupStore,
    GroupUpdate,
    OperatorAction,
)

_FINGERPRINT: Final = re.compile("[0-9a-f]{4,16}")
_MAX_TAGS: Final = 32
_MAX_TAG: Final = 64
_MAX_AUDIT: Final = 10_000
#: Most fingerprints one call names.
MAX_FINGERPRINTS: Final = 10_000
#: Per-group results a bulk reply lists at most.
MAX_RESULTS: Final = 10_000


class Triage:
    """The bulk-triage RPCs over one store and engine."""

    def __init__(
        self,
        store: GroupStore,
        engine: ActionEngine,
        *,
        on_action: Callable[[OperatorAction], None] | None = None,
        links: LinkView | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        self._on_action = on_action
        self._links = links

    def methods(self) -> dict[str, grpc.RpcMethodHandler]:
        """Method name → handler, for the Control service's generic handler."""

        bulk = control_pb2.BulkResponse
        return {
            "Dismiss": unary(self.dismiss, control_pb2.DismissRequest, bulk),
            "Categorize": unary(self.categorize, control_pb2.CategorizeRequest, bulk),
            "Resolve": unary(self.resolve, control_pb2.SetStatusRequest, bulk),
            "Reopen": unary(self.reopen, control_pb2.SetStatusRequest, bulk),
            "Fix": unary(self.fix, control_pb2.FixRequest, bulk),
            "ListAudit": unary(
                self.list_audit, control_pb2.ListAuditRequest, control_pb2.ListAuditResponse
            ),
        }

    # selection
    def select(self, selection: Any, context: grpc.ServicerContext) -> GroupQuery:
        """The :class:`GroupQuery` a ``GroupSelection`` names; aborts the call when a
        fingerprint is malformed, unknown or ambiguous, or when nothing narrows the
        selection and ``all`` is not set."""
        query = query_of(selection.filter, context)
        at_most(
            context,
            len(selection.fingerprints),
            MAX_FINGERPRINTS,
            "the number of fingerprints in one call (use a filter for more)",
        )
        named = [text.strip().lower() for text in selection.fingerprints]
        if named:
            resolved = self._resolve(named, context)
            if query.fingerprints is not None:  # the filter names groups too: both must
                resolved = tuple(sorted(set(resolved) & set(query.fingerprints)))
            query = replace(query, fingerprints=resolved)
        if query.selects_everything and not selection.all:
            invalid(
                context,
                "name the groups: give fingerprints or a filter, or set `all` (--all) to act "
                "on every group",
            )
        if selection.with_symptoms and self._links is not None:
            chosen = [group.fingerprint for group in self._store.iter_groups(query)]
            symptoms = self._links.symptoms_of(chosen)
            query = GroupQuery(fingerprints=tuple(sorted({*chosen, *symptoms})))
        return query

    def _resolve(self, named: list[str], context: grpc.ServicerContext) -> tuple[str, ...]:
        for text in named:
            if not _FINGERPRINT.fullmatch(text):
                invalid(
                    context,
                    f"{text!r} is not a fingerprint (4 to 16 hex characters)",
                )
        full = [text for text in named if len(text) == 16]
        missing = self._store.missing(full) if full else []
        resolved = set(full)
        for prefix in (text for text in named if len(text) < 16):
            try:
                resolved.add(self._store.get_group(prefix).fingerprint)
            except GroupNotFound:
                missing.append(prefix)
            except AmbiguousFingerprint as exc:
                invalid(context, str(exc))
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no failure group has fingerprint {missing[0]!r}{more}; nothing was changed",
            )
        return tuple(sorted(resolved))

    def _apply(
        self,
        request: Any,
        context: grpc.ServicerContext,
        action: str,
        update: GroupUpdate,
        detail: dict[str, Any],
    ) -> Any:
        query = self.select(request.selection, context)
        if request.dry_run:
            return control_pb2.BulkResponse(matched=self._store.count_groups(query), dry_run=True)
        actor, peer = who(request.actor, context)
        logged = self._store.update_groups(
            query,
            update,
            OperatorAction(
                action, actor, peer, {**detail, "selection": _describe(request.selection)}
            ),
        )
        if self._on_action is not None:
            self._on_action(logged)
        reply = control_pb2.BulkResponse(matched=logged.count, action_id=logged.id)
        if action != "fix":
            reply.results.extend(
                control_pb2.GroupResult(fingerprint=fingerprint, outcome="changed")
                for fingerprint in self._store.action_fingerprints(logged.id, MAX_RESULTS)
            )
            reply.results_truncated = logged.count > MAX_RESULTS
        return reply

    # the RPCs
    def dismiss(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Dismiss: status ``dismissed`` with a reason, optionally until a time and/or
        until the group's rate exceeds a limit."""
        reason = request.reason.strip()
        if not reason:
            invalid(context, "a dismissal needs a reason")
        now = time.time_ns()
        if request.until_unix_nano > MAX_INT64:
            invalid(
                context,
                f"the dismissal's end time {request.until_unix_nano} ns is past the latest "
                f"time faultlens stores ({LATEST_TIME})",
            )
        if request.until_unix_nano and request.until_unix_nano <= now:
            invalid(context, "the dismissal's end time is in the past")
        at_most(context, request.reopen_above_per_hour, MAX_INT64, "reopen_above_per_hour")
        actor, _ = who(request.actor, context)
        dismissal = Dismissal(
            reason=reason[:MAX_REASON],
            by=actor,
            at=now,
            until=request.until_unix_nano,
            max_per_hour=request.reopen_above_per_hour,
        )
        detail: dict[str, Any] = {"reason": dismissal.reason}
        if dismissal.until:
            detail["until_unix_nano"] = dismissal.until
        if dismissal.max_per_hour:
            detail["reopen_above_per_hour"] = dismissal.max_per_hour
        return self._apply(
            request,
            context,
            "dismiss",
            GroupUpdate(status="dismissed", dismissal=dismissal),
            detail,
        )

    def categorize(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Categorize: set (and lock) category and/or severity, add and remove tags."""
        category = request.category.strip()
        severity = request.severity.strip().lower()
        add_tags = _tags(request.add_tags, context)
        remove_tags = _tags(request.remove_tags, context)
        if not (category or severity or add_tags or remove_tags):
            invalid(context, "give a category, a severity or tags to add or remove")
        if len(category) > MAX_NAME:
            invalid(context, f"a category is at most {MAX_NAME} characters")
        if severity and severity not in semconv.SEVERITIES:
            invalid(
                context,
                f"unknown severity {severity!r}; use one of {', '.join(semconv.SEVERITIES)}",
            )
        detail = {
            key: value
            for key, value in (
                ("category", category),
                ("severity", severity),
                ("add_tags", list(add_tags)),
                ("remove_tags", list(remove_tags)),
            )
            if value
        }
        update = GroupUpdate(
            category=category or None,
            severity=severity or None,
            add_tags=add_tags,
            remove_tags=remove_tags,
        )
        return self._apply(request, context, "categorize", update, detail)

    def resolve(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Resolve: status ``resolved``; the group regresses when it occurs again."""
        return self._status(request, context, "resolve", "resolved")

    def reopen(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Reopen: status ``open`` (ends a dismissal or a resolution)."""
        return self._status(request, context, "reopen", "open")

    def _status(self, request: Any, context: grpc.ServicerContext, action: str, status: str) -> Any:
        reason = request.reason.strip()[:MAX_REASON]
        detail = {"reason": reason} if reason else {}
        reply = self._apply(request, context, action, GroupUpdate(status=status), detail)
        if status == "resolved" and not reply.dry_run and self._links is not None:
            # What happens to a resolved group next is a new story: its links as a
            # symptom start again from its current count.
            self._links.reset(self._store.iter_groups(GroupQuery(action_id=reply.action_id)))
        return reply

    def fix(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Fix: queue a configured hook for every selected group."""
        hook = request.hook.strip()
        hooks = self._engine.config.hooks
        if hook not in hooks:
            defined = ", ".join(sorted(hooks)) or "none"
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the processor's configuration defines no hook named {hook!r} (hooks: {defined})",
            )
        reply = self._apply(request, context, "fix", GroupUpdate(), {"hook": hook})
        if reply.dry_run:
            return reply
        actor, peer = who(request.actor, context)
        requested_by = f"{actor} ({peer})" if peer else actor
        for group in self._store.iter_groups(
            GroupQuery(action_id=reply.action_id, sort="first_seen", ascending=True)
        ):
            outcome = self._engine.run_hook(hook, facts_of_group(group), requested_by=requested_by)
            if outcome in ("queued", "deferred"):
                reply.queued += 1
            else:
                reply.dropped += 1
            if len(reply.results) < MAX_RESULTS:
                reply.results.add(fingerprint=group.fingerprint, outcome=outcome)
            else:
                reply.results_truncated = True
        return reply

    def list_audit(self, request: Any, context: grpc.ServicerContext) -> Any:
        """ListAudit: the operator log, newest first."""
        actions = self._store.operator_actions(
            limit=min(request.limit or 100, _MAX_AUDIT),
            fingerprint=request.fingerprint.strip().lower() or None,
            action=request.action.strip() or None,
        )
        return control_pb2.ListAuditResponse(
            actions=[operator_action_message(action) for action in actions]
        )


def _tags(values: Any, context: grpc.ServicerContext) -> tuple[str, ...]:
    tags = tuple(sorted({value.strip() for value in values if value.strip()}))
    if len(tags) > _MAX_TAGS:
        invalid(context, f"at most {_MAX_TAGS} tags at a time")
    for tag in tags:
        if len(tag) > _MAX_TAG:
            invalid(context, f"tag {tag[:20]!r}… is longer than {_MAX_TAG} characters")
    return tags


def _describe(selection: Any) -> dict[str, Any]:
    """The selection as the operator log keeps it (fingerprints are listed separately)."""
    described: dict[str, Any] = {}
    filter_ = selection.filter
    for name in ("statuses", "services", "categories", "severities", "tags"):
        values = list(getattr(filter_, name))
        if values:
            described[name] = values
    if filter_.since_unix_nano:
        described["since_unix_nano"] = filter_.since_unix_nano
    if selection.fingerprints:
        described["fingerprints"] = len(selection.fingerprints)
    if selection.all:
        described["all"] = True
    if selection.with_symptoms:
        described["with_symptoms"] = True
    return described
