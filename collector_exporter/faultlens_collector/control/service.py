"""The ``faultlens.v1.Control`` gRPC service (proto/faultlens/v1/control.proto).

Served next to OTLP on the processor's port; the ``faultlens`` command line is
its client (:mod:`.client`). Service wiring is written here by hand over the
generated messages, so no grpcio-tools version is baked in. Every call ends with a
proper status, never ``UNKNOWN`` (:mod:`.serving`). The RPCs live by what
they serve: the group reads in :mod:`.groups`, bulk triage and the operator log in
:mod:`.bulk`, halts, streams and hook records over the action engine in
:mod:`.actions`, what an overview needs (series, the groups watch, recent alerts) in
:mod:`.overview` and :mod:`.watch`; records become messages in :mod:`.convert`. Every request is
decoded inside its handler (:mod:`.serving`), so a malformed one is
``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import grpc

from faultlens_collector.actions import ActionEngine
from faultlens_collector.causes.view import LinkView
from faultlens_collector.control.actions import EngineApi
from faultlens_collector.control.bulk import Triage
from faultlens_collector.control.groups import GroupsApi
from faultlens_collector.control.methods import SERVICE
from faultlens_collector.control.overview import OverviewApi
from faultlens_collector.control.rpc import Streams
from faultlens_collector.control.serving import serving_handler
from faultlens_collector.control.watch import GroupWatch
from faultlens_collector.groups.store import GroupStore


class ControlService:
    """The whole ``faultlens.v1.Control`` service for one store (and engine: without
    one, only the group reads are served; with ``links``, groups carry their root
    causes and selections can take symptoms along)."""

    def __init__(
        self,
        store: GroupStore,
        engine: ActionEngine | None = None,
        *,
        max_streams: int = 256,
        watch: GroupWatch | None = None,
        links: LinkView | None = None,
    ) -> None:
        self.streams = Streams(max_streams)
        #: Feeds ``WatchGroups``; the processor hands it every commit (it is a listener).
        self.watch = watch or GroupWatch()
        hook_runs = engine.hook_runs_by_group if engine is not None else None
        self._methods: dict[str, grpc.RpcMethodHandler] = GroupsApi(
            store, links, hook_runs
        ).methods()
        self._methods.update(OverviewApi(store, self.watch, self.streams, engine).methods())
        if engine is not None:
            self._methods.update(
                Triage(store, engine, on_action=self.watch.on_action, links=links).methods()
            )
            self._methods.update(EngineApi(engine, store, self.streams).methods())

    def close_streams(self) -> None:
        """End every open stream and refuse new ones (the processor is stopping)."""
        self.streams.close_all()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """The generic handler serving every Control RPC."""
        # Requests are decoded in the handlers: a malformed one is INVALID_ARGUMENT.
        return [
            grpc.method_handlers_generic_handler(
                SERVICE,
                {name: serving_handler(name, handler) for name, handler in self._methods.items()},
            )
        ]
