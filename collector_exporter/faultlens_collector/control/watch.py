"""``WatchGroups``: which failure groups change, as it happens.

:class:`GroupWatch` is a commit listener (the batch writer calls
:meth:`GroupWatch.on_commit` on its thread after each committed transaction) and
is told about operator actions (:meth:`GroupWatch.on_action`). It only queues what
changed — fingerprints and flags, no copies of groups — and only while somebody
watches: with no stream open a commit costs one length check.

Each stream gathers what arrives for ``coalesce_millis`` (default 100 ms) after the
first change and sends it as one ``GroupsChanged`` event: created and updated
fingerprints (each once per event), those that regressed or reopened, the operator
actions. A client that wants the groups' new state reads them (``ListGroups`` with
``filter.fingerprints``). A stream that falls behind (more than
:data:`MAX_PENDING` commits queued) loses what it missed and gets
``overflowed`` instead, telling the client to re-read what it shows; an event never
names more than :data:`MAX_EVENT_GROUPS` groups (more: ``overflowed``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
from opentelemetry.util.types import AttributeValue

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions.broadcast import Broadcast
from faultlens_collector.control.convert import operator_action_message
from faultlens_collector.control.rpc import Streams
from faultlens_collector.groups.model import Change
from faultlens_collector.groups.store import OperatorAction
from faultlens_collector.processor.listeners import Listener

DEFAULT_HEARTBEAT: Final = 15
MAX_HEARTBEAT: Final = 300
DEFAULT_COALESCE_MILLIS: Final = 100
MAX_COALESCE_MILLIS: Final = 5000
#: Commits (or actions) queued per stream before it overflows.
MAX_PENDING: Final = 4096
#: Fingerprints one event names at most.
MAX_EVENT_GROUPS: Final = 10_000

#: (fingerprint, created, regressed, reopened) per group of one commit.
Committed = tuple[tuple[str, bool, bool, bool], ...]
Item = Committed | OperatorAction


class GroupWatch(Listener):
    """The changes feed behind ``WatchGroups`` (see the module docstring); a
    :class:`~faultlens_collector.processor.listeners.Listener` of the processor."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self._feed: Broadcast[Item] = Broadcast(max_pending=max_pending)

    @property
    def watchers(self) -> int:
        """Streams open now."""
        return len(self._feed)

    def on_commit(self, changes: Sequence[Change]) -> None:
        """A transaction committed these changes (the writer's thread: quick, never raises)."""
        if not len(self._feed):
            return
        self._feed.publish(
            tuple(
                (change.group.fingerprint, change.created, change.regressed, change.reopened)
                for change in changes
            )
        )

    def on_success(self, key: Mapping[str, AttributeValue]) -> None:
        """Not needed here."""

    def on_metrics(self, request: Any) -> None:
        """Not needed here."""

    def shutdown(self) -> None:
        """Streams are ended by the control service when the processor stops."""

    def on_action(self, action: OperatorAction) -> None:
        """An operator action changed groups."""
        if len(self._feed):
            self._feed.publish(action)

    def stream(
        self, request: Any, context: grpc.ServicerContext, streams: Streams
    ) -> Iterator[Any]:
        """The ``WatchGroups`` RPC: events until the client leaves or the processor stops."""
        heartbeat = min(max(request.heartbeat_seconds or DEFAULT_HEARTBEAT, 1), MAX_HEARTBEAT)
        coalesce = min(request.coalesce_millis or DEFAULT_COALESCE_MILLIS, MAX_COALESCE_MILLIS)
        subscription = self._feed.subscribe()
        streams.enter(subscription, context)
        version = 0
        lost = 0
        try:
            while context.is_active():
                item = subscription.get(timeout=heartbeat)
                if subscription.closed:
                    return
                event = _Event()
                if item is not None or subscription.lost != lost:
                    event.add(item)
                    deadline = time.monotonic() + coalesce / 1000
                    while (left := deadline - time.monotonic()) > 0:
                        item = subscription.get(timeout=left)
                        if subscription.closed:
                            return
                        event.add(item)
                event.overflowed = event.overflowed or subscription.lost != lost
                lost = subscription.lost
                version += 1
                yield event.message(version)
        finally:
            streams.leave(subscription)


@dataclass
class _Event:
    """What one ``GroupsChanged`` event gathers."""

    created: dict[str, None] = field(default_factory=dict)
    updated: dict[str, None] = field(default_factory=dict)
    regressed: dict[str, None] = field(default_factory=dict)
    reopened: dict[str, None] = field(default_factory=dict)
    actions: list[OperatorAction] = field(default_factory=list)
    overflowed: bool = False

    def add(self, item: Item | None) -> None:
        if item is None:
            return
        if isinstance(item, OperatorAction):
            self.actions.append(item)
            return
        if len(self.created) + len(self.updated) + len(item) > MAX_EVENT_GROUPS:
            self.overflowed = True
            return
        for fingerprint, created, regressed, reopened in item:
            if created:
                self.created[fingerprint] = None
            elif fingerprint not in self.created:
                self.updated[fingerprint] = None
            if regressed:
                self.regressed[fingerprint] = None
            if reopened:
                self.reopened[fingerprint] = None

    def message(self, version: int) -> Any:
        quiet = not (self.created or self.updated or self.actions or self.overflowed)
        return control_pb2.GroupsChanged(
            version=version,
            created=list(self.created),
            updated=[
                fingerprint for fingerprint in self.updated if fingerprint not in self.created
            ],
            regressed=list(self.regressed),
            reopened=list(self.reopened),
            actions=[operator_action_message(action) for action in self.actions],
            overflowed=self.overflowed,
            heartbeat=quiet,
        )
