"""The control RPCs over the action engine: halts, alert and halt streams, hook runs.

* ``ListHalts``, ``StartHalt``, ``ResumeHalt`` — halts in force (or their
  history), halting a key by hand, lifting halts. Starting and lifting are
  operator actions: logged with the request's ``actor`` and the peer.
* ``WatchHalts`` — a snapshot of the halts in force, then every change, and a
  heartbeat after ``heartbeat_seconds`` without one; what the SDK's halt guard
  follows. A stream that falls behind gets a fresh snapshot instead of the changes
  it missed.
* ``StreamAlerts`` — every alert raised from now on.
* ``ListHookRuns``, ``GetEffectiveness`` — the hook audit trail (each fix with its
  verification state) and each hook's recent fix record.

Streams hold a server thread each for as long as they are open; the processor
reserves ``max_streams`` threads for them (:class:`Streams`) so streams never
starve ingest, and refuses more with ``RESOURCE_EXHAUSTED``. When the processor
stops, :meth:`Streams.close_all` ends them (the client sees the stream end and
reconnects to the next processor).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import grpc

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions import ActionEngine
from faultlens_collector.actions.config import ALERT_KINDS
from faultlens_collector.control.convert import (
    alert_message,
    effectiveness_message,
    halt_event,
    halt_message,
    hook_run_message,
)
from faultlens_collector.control.messages import key_of
from faultlens_collector.control.rpc import (
    MAX_REASON,
    Streams,
    invalid,
    server_stream,
    unary,
    who,
)
from faultlens_collector.groups.store import GroupStore, OperatorAction

DEFAULT_HEARTBEAT: Final = 15
MAX_HEARTBEAT: Final = 300
_MAX_LIST: Final = 10_000
#: How long a stream waits for an item before it checks its client is still there.
_POLL_SECONDS: Final = 30.0


class EngineApi:
    """The engine-backed Control RPCs (see the module docstring)."""

    def __init__(self, engine: ActionEngine, store: GroupStore, streams: Streams) -> None:
        self._engine = engine
        self._store = store
        self.streams = streams

    def methods(self) -> dict[str, grpc.RpcMethodHandler]:
        """Method name → handler, for the Control service's generic handler."""
        pb = control_pb2
        return {
            "ListHalts": unary(self.list_halts, pb.ListHaltsRequest, pb.ListHaltsResponse),
            "ResumeHalt": unary(self.resume_halt, pb.ResumeHaltRequest, pb.ResumeHaltResponse),
            "StartHalt": unary(self.start_halt, pb.StartHaltRequest, pb.Halt),
            "WatchHalts": server_stream(self.watch_halts, pb.WatchHaltsRequest, pb.HaltEvent),
            "StreamAlerts": server_stream(self.stream_alerts, pb.StreamAlertsRequest, pb.Alert),
            "ListHookRuns": unary(
                self.list_hook_runs, pb.ListHookRunsRequest, pb.ListHookRunsResponse
            ),
            "GetEffectiveness": unary(
                self.get_effectiveness, pb.GetEffectivenessRequest, pb.GetEffectivenessResponse
            ),
        }

    # halts
    def list_halts(self, request: Any, context: grpc.ServicerContext) -> Any:
        """ListHalts: in force (oldest first), or the history (newest first)."""
        if request.include_resumed:
            halts = self._engine.store.halt_history(min(request.limit or 100, _MAX_LIST))
        else:
            halts = self._engine.halts_in_force()
        return control_pb2.ListHaltsResponse(halts=[halt_message(halt) for halt in halts])

    def start_halt(self, request: Any, context: grpc.ServicerContext) -> Any:
        """StartHalt: halt a key by hand."""
        key = self._key(request.key, context)
        if not key:
            invalid(context, "give the key to halt (at least one attribute)")
        reason = request.reason.strip()[:MAX_REASON]
        if not reason:
            invalid(context, "a halt needs a reason")
        actor, peer = who(request.actor, context)
        halt = self._engine.halt(key, reason, by=actor)
        self._store.log_action(
            OperatorAction("halt", actor, peer, {"key": key, "reason": reason, "id": halt.id}, 1)
        )
        return halt_message(halt)

    def resume_halt(self, request: Any, context: grpc.ServicerContext) -> Any:
        """ResumeHalt: by id, or every halt on exactly the key."""
        key = self._key(request.key, context)
        halt_id = request.id.strip()
        if not halt_id and not key:
            invalid(context, "give the halt's id or its key")
        actor, peer = who(request.actor, context)
        resumed = self._engine.resume(halt_id=halt_id or None, key=key or None, by=actor)
        if not resumed:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no halt in force has id {halt_id!r}" if halt_id else f"no halt on {key}",
            )
        self._store.log_action(
            OperatorAction(
                "resume",
                actor,
                peer,
                {
                    "halts": [halt.id for halt in resumed],
                    "keys": [halt.attributes for halt in resumed],
                },
                len(resumed),
            )
        )
        return control_pb2.ResumeHaltResponse(resumed=[halt_message(halt) for halt in resumed])

    @staticmethod
    def _key(items: Any, context: grpc.ServicerContext) -> dict[str, Any]:
        try:
            return key_of(items)
        except ValueError as exc:
            invalid(context, str(exc))
            raise  # unreachable: abort raises

    # streams
    def watch_halts(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """WatchHalts: snapshot, changes, heartbeats."""
        heartbeat = min(max(request.heartbeat_seconds or DEFAULT_HEARTBEAT, 1), MAX_HEARTBEAT)
        subscription = self._engine.subscribe_halts()
        self.streams.enter(subscription, context)
        version = 0
        try:
            while context.is_active():
                change = subscription.get(timeout=heartbeat)
                if subscription.closed:
                    return
                if change is None:
                    yield control_pb2.HaltEvent(
                        kind=control_pb2.HALT_EVENT_KIND_HEARTBEAT, version=version
                    )
                    continue
                version = change.version
                yield halt_event(change)
        finally:
            self.streams.leave(subscription)

    def stream_alerts(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """StreamAlerts: every alert from now on (of the kinds asked for)."""
        kinds = alert_kinds(request.kinds, context)
        subscription = self._engine.subscribe_alerts()
        self.streams.enter(subscription, context)
        try:
            while context.is_active():
                alert = subscription.get(timeout=_POLL_SECONDS)
                if subscription.closed:
                    return
                if alert is not None and (not kinds or alert.kind in kinds):
                    yield alert_message(alert)
        finally:
            self.streams.leave(subscription)

    # hooks
    def list_hook_runs(self, request: Any, context: grpc.ServicerContext) -> Any:
        """ListHookRuns: hook executions, newest first."""
        runs = self._engine.hook_runs(
            fingerprint=request.fingerprint.strip().lower() or None,
            hook=request.hook.strip() or None,
            limit=min(request.limit or 100, _MAX_LIST),
        )
        if request.since_unix_nano:  # newest first: the runs since then are a prefix
            since = request.since_unix_nano / 1e9
            runs = [run for run in runs if run.record.started_at >= since]
        return control_pb2.ListHookRunsResponse(runs=[hook_run_message(run) for run in runs])

    def get_effectiveness(self, request: Any, context: grpc.ServicerContext) -> Any:
        """GetEffectiveness: each configured hook's recent fix record."""
        reports = self._engine.effectiveness()
        return control_pb2.GetEffectivenessResponse(
            hooks=[effectiveness_message(reports[hook]) for hook in sorted(reports)]
        )


def alert_kinds(values: Any, context: grpc.ServicerContext) -> frozenset[str]:
    """The alert kinds a request names (empty: all); aborts with ``INVALID_ARGUMENT``
    naming an unknown one."""
    kinds = frozenset(values)
    unknown = sorted(kinds - set(ALERT_KINDS))
    if unknown:
        invalid(
            context,
            f"unknown alert kind {', '.join(map(repr, unknown[:5]))[:200]}; use any of "
            f"{', '.join(ALERT_KINDS)}",
        )
    return kinds
