"""The processor: OTLP ingest, the failure store and the control API on one gRPC port.

::

    processor = Processor(ProcessorSettings(listen="127.0.0.1:0", store_path="faults.db"))
    processor.start()          # binds, opens and migrates the store, starts the threads
    print(processor.address)   # 127.0.0.1:<port>
    ...
    processor.stop()           # stops accepting, commits what was acknowledged, closes

What happens to failures once they are stored is up to the processor's
*listeners* (:mod:`.listeners`): each committed transaction, every MetricsService
request and — when a listener asks — the keys of the spans that ended without failure
are handed to them. Every processor has one: the
:class:`~faultlens_collector.actions.ActionEngine` (``settings.actions``, the
``--config`` file; defaults without one) as an
:class:`~faultlens_collector.actions.listener.ActionListener`, whose tables live in
the same database as the groups (:mod:`faultlens_collector.store`); before it,
root-cause linking (``settings.root_causes``,
:class:`~faultlens_collector.causes.listener.RootCauseListener`), which links groups
across services and holds new groups' alerts until it knows whether they are symptoms;
``listeners`` add more, called after both. Alerts go to ``settings.alerts`` (or
``[alerts] target``). The standard ``grpc.health.v1.Health`` service reports readiness
(:mod:`.health`); ``faultlens check`` talks to
:mod:`faultlens_collector.control.selfcheck`, whose synthetic failures no listener
sees. ``faultlens serve`` is a thin command-line front of this class.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import grpc
from faultlens.shared import Redactor
from opentelemetry.metrics import MeterProvider

from faultlens_collector.actions import ActionEngine, FailureFacts
from faultlens_collector.actions.listener import ActionListener, Announcer
from faultlens_collector.actions.store import ActionStore
from faultlens_collector.causes.listener import RootCauseListener, RootCauseSettings
from faultlens_collector.causes.store import LinkStore
from faultlens_collector.causes.view import LinkView
from faultlens_collector.channels import DEFAULT_ADDRESS
from faultlens_collector.control.selfcheck import SelfChecks
from faultlens_collector.control.service import ControlService
from faultlens_collector.control.watch import GroupWatch
from faultlens_collector.groups.store import GroupStore
from faultlens_collector.groups.writer import BatchWriter
from faultlens_collector.ingest.admission import Admission, CountingExecutor
from faultlens_collector.ingest.forward import METHODS as OTLP_METHODS
from faultlens_collector.ingest.forward import Forwarder, ForwardSettings
from faultlens_collector.ingest.service import IngestService, IngestSettings
from faultlens_collector.processor.auth import BearerTokenInterceptor
from faultlens_collector.processor.health import OPEN_METHODS, Readiness
from faultlens_collector.processor.listeners import Listener, MultiListener
from faultlens_collector.processor.selfmetrics import ProcessorMetrics
from faultlens_collector.store import Database, open_database

if TYPE_CHECKING:  # the settings carry the configuration; only the engine reads it
    from faultlens_collector.actions.config import ActionsConfig

_log = logging.getLogger(__name__)

DEFAULT_LISTEN: Final = DEFAULT_ADDRESS
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


class ProcessorError(RuntimeError):
    """The processor cannot start (port taken, store unusable, bad TLS files)."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Server TLS: certificate chain and key (PEM); a client CA makes it mutual TLS."""

    certificate_file: Path
    key_file: Path
    client_ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    """Everything ``faultlens serve`` can set."""

    store_path: str | Path
    listen: str = DEFAULT_LISTEN
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    token: str | None = None
    tls: TlsSettings | None = None
    forward: ForwardSettings | None = None
    #: Threads serving RPCs.
    workers: int = 16
    #: RPCs in progress or waiting for a thread; beyond this gRPC refuses new ones
    #: (``RESOURCE_EXHAUSTED``).
    max_concurrent_rpcs: int = 512
    #: RPCs waiting for or holding an RPC thread; beyond this, OTLP requests are shed
    #: with ``UNAVAILABLE`` + RetryInfo before their bodies are read (see
    #: :mod:`faultlens_collector.ingest.admission`).
    max_pending_requests: int = 256
    #: Open server streams (SDK halt guards, alert followers); each holds a thread of
    #: its own, on top of ``workers``. More are refused with ``RESOURCE_EXHAUSTED``.
    max_streams: int = 256
    #: How often dismissals whose end time passed are lifted (seconds).
    maintenance_interval: float = 30.0
    #: Requests waiting for the store before ingest sheds load with ``UNAVAILABLE``.
    max_pending_writes: int = 256
    #: ``synchronous=FULL``: commits also survive an OS crash or power loss.
    durable: bool = False
    #: Redact secrets from stored messages and stack traces.
    redact: bool = True
    ingest: IngestSettings = field(default_factory=IngestSettings)
    #: Rules, hooks, halt rules and alert settings (the ``--config`` file); None: defaults.
    actions: ActionsConfig | None = None
    #: Where alerts go as OTLP log records (``--alerts``): ``host:port`` or ``http://…``
    #: for plaintext, ``https://…`` for TLS; overrides ``[alerts] target``.
    alerts: str | None = None
    #: Seconds between two probes of a store that cannot commit (:mod:`.health`).
    probe_interval: float = 2.0
    #: Root-cause linking across services (docs/root-causes.md); None: off.
    root_causes: RootCauseSettings | None = field(default_factory=RootCauseSettings)


class Processor:
    """One running processor (see the module docstring).

    ``listeners`` are told about committed changes, successes and metrics after the
    action engine (see :mod:`.listeners` for their contract); the processor shuts
    them down when it stops.
    """

    def __init__(
        self,
        settings: ProcessorSettings,
        *,
        meter_provider: MeterProvider | None = None,
        redactor: Redactor | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.settings = settings
        self.redactor = redactor or Redactor()
        self.metrics = ProcessorMetrics(meter_provider)
        self._meter_provider = meter_provider
        self._extra_listeners = tuple(listeners)
        self.listeners: MultiListener | None = None
        self._server: grpc.Server | None = None
        self.database: Database | None = None
        self.store: GroupStore | None = None
        self.action_store: ActionStore | None = None
        self.engine: ActionEngine | None = None
        #: Root-cause linking (None when ``settings.root_causes`` is None).
        self.root_causes: RootCauseListener | None = None
        #: The stored links as the control API shows them.
        self.links: LinkView | None = None
        self.control: ControlService | None = None
        self.group_watch: GroupWatch | None = None
        self._stopping = threading.Event()
        self._maintenance: threading.Thread | None = None
        self.writer: BatchWriter | None = None
        self.forwarder: Forwarder | None = None
        self.executor: CountingExecutor | None = None
        self._admission: Admission | None = None
        self.readiness: Readiness | None = None
        self.checks: SelfChecks | None = None
        self.port = 0

    @property
    def address(self) -> str:
        """``host:port`` the processor listens on (the real port when 0 was asked for)."""
        host = self.settings.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    def start(self) -> None:
        """Open the database and its stores, start the threads and the gRPC server.

        Raises :class:`ProcessorError` with a readable message when any part
        cannot start; whatever was started is stopped again.
        """
        settings = self.settings
        try:
            self.database = open_database(settings.store_path, durable=settings.durable)
            redact = self.redactor.redact if settings.redact else str
            self.store = self.database.group_store(redact=redact)
        except Exception as exc:
            self._close_database()
            raise ProcessorError(str(exc)) from exc
        store = self.store
        try:
            engine = self._build_engine(self.database)
        except Exception:
            self._close_database()
            raise
        self.listeners = listeners = self._build_listeners(store, engine)
        checks = SelfChecks(store, engine)
        self.checks = checks
        readiness = Readiness(store.probe, probe_interval=settings.probe_interval)
        self.readiness = readiness
        self.writer = BatchWriter(
            store.apply,
            max_pending=settings.max_pending_writes,
            # A self-check's synthetic group is kept from every listener.
            on_commit=lambda changes: listeners.on_commit(checks.intercept(changes)),
            on_latency=self.metrics.commit_duration.record,
            on_state=readiness.store_state,
        )
        readiness.on_recovered = self.writer.recovered
        if settings.forward is not None:
            self.forwarder = Forwarder(
                settings.forward,
                on_drop=lambda reason, n: self.metrics.forward_dropped.add(n, {"reason": reason}),
                on_forwarded=self.metrics.forward_sent.add,
            )
        forwarder = self.forwarder
        writer = self.writer
        self.metrics.observe(
            store_queue=lambda: writer.pending,
            forward_queue=(lambda: forwarder.queued) if forwarder else None,
            forward_bytes=(lambda: forwarder.queued_bytes) if forwarder else None,
            groups=lambda: store.group_count,
        )
        try:
            self._server = self._build_server()
            self.port = self._bind(self._server)
        except Exception:
            self._close_database()
            raise
        engine.start()
        if self.root_causes is not None:
            self.root_causes.start()
        readiness.start()
        self._maintenance = threading.Thread(
            target=self._maintain, name="faultlens-maintenance", daemon=True
        )
        self._maintenance.start()
        if forwarder is not None:
            forwarder.start()
        self._server.start()
        _log.info(
            "faultlens processor listening on %s, store %s", self.address, self.database.location
        )

    def _build_engine(self, database: Database) -> ActionEngine:
        settings = self.settings
        try:
            self.action_store = database.action_store()
            self.engine = ActionEngine(
                settings.actions,
                self.action_store,
                alerts_endpoint=settings.alerts,
                redactor=self.redactor,
                meter_provider=self._meter_provider,
            )
        except Exception as exc:
            raise ProcessorError(f"cannot start the action engine: {exc}") from exc
        return self.engine

    def _build_listeners(self, store: GroupStore, engine: ActionEngine) -> MultiListener:
        """Root-cause linking (holding new groups' alerts), the engine's listener, the
        group watch and the extra listeners, in that order."""
        assert self.database is not None
        held: dict[str, FailureFacts] = {}  # new groups' facts while their alert is held
        try:
            links = self.database.link_store()
            self.links = LinkView(links, store)
            self.root_causes = self._build_root_causes(links, engine, held)
        except Exception as exc:
            self._close_database()
            raise ProcessorError(str(exc)) from exc
        linking = [self.root_causes] if self.root_causes is not None else []
        holds = self.root_causes.held if self.root_causes is not None else None
        self.group_watch = GroupWatch()
        return MultiListener(
            [
                *linking,
                ActionListener(engine, holds=holds, held=held),
                self.group_watch,
                *self._extra_listeners,
            ]
        )

    def _build_root_causes(
        self, links: LinkStore, engine: ActionEngine, held: dict[str, FailureFacts]
    ) -> RootCauseListener | None:
        """Root-cause linking, told before the engine about every commit (it holds new
        groups' alerts the engine would send); None when it is off (the links stored
        before are still shown)."""
        settings = self.settings.root_causes
        if settings is None:
            return None
        assert self.store is not None
        # A held alert waits in the outbox at most until its trace must have been decided.
        engine.held_alert_seconds = settings.window.window_seconds + settings.window.settle_seconds
        alerts = Announcer(engine, self.store, held) if engine.holds_new_alerts() else None
        return RootCauseListener(links, settings, alerts=alerts)

    def _build_server(self) -> grpc.Server:
        settings = self.settings
        # Streams hold a thread each for as long as they are open: room for them on top.
        executor = CountingExecutor(
            settings.workers + settings.max_streams, thread_name_prefix="faultlens-rpc"
        )
        self.executor = executor
        assert self.store is not None
        engine = self.engine
        assert engine is not None
        control = ControlService(
            self.store,
            engine,
            max_streams=settings.max_streams,
            watch=self.group_watch,
            links=self.links,
        )
        self.control = control
        # The token is checked first: an unauthenticated call is refused, never shed.
        interceptors: list[Any] = []
        if settings.token:
            interceptors.append(
                BearerTokenInterceptor(
                    settings.token,
                    open_methods=OPEN_METHODS,
                    on_refused=lambda method: self.metrics.refused.add(
                        1, {"reason": "unauthenticated"}
                    ),
                )
            )
        self._admission = Admission(
            lambda: executor.backlog - len(control.streams),
            settings.max_pending_requests,
            frozenset(OTLP_METHODS.values()),
            retry_delay_seconds=settings.ingest.retry_delay_seconds,
            on_shed=lambda: self.metrics.refused.add(1, {"reason": "overloaded"}),
        )
        interceptors.append(self._admission)
        assert self.writer is not None
        ingest = IngestService(
            self.writer,
            self.metrics,
            settings=settings.ingest,
            forwarder=self.forwarder,
            listener=self.listeners,
        )
        server = grpc.server(
            executor,
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", settings.max_request_bytes),
                ("grpc.max_send_message_length", DEFAULT_MAX_REQUEST_BYTES),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs + settings.max_streams,
        )
        assert self.checks is not None
        server.add_generic_rpc_handlers(
            [*ingest.handlers(), *control.handlers(), *self.checks.handlers()]
        )
        assert self.readiness is not None
        self.readiness.add_to(server)
        return server

    def _bind(self, server: grpc.Server) -> int:
        settings = self.settings
        try:
            if settings.tls is None:
                port = server.add_insecure_port(settings.listen)
            else:
                port = server.add_secure_port(settings.listen, _server_credentials(settings.tls))
        except (RuntimeError, OSError) as exc:
            raise ProcessorError(f"cannot listen on {settings.listen}: {exc}") from exc
        if not port:
            raise ProcessorError(f"cannot listen on {settings.listen} (address in use?)")
        return int(port)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout``); True when it stopped."""
        return self._server is not None and bool(self._server.wait_for_termination(timeout))

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let running ones finish (``grace`` s), flush and close.

        Streams that never end on their own (halts, alerts) are ended first, so they
        do not hold the stop for the whole grace period.
        """
        self._stopping.set()
        if self.readiness is not None:
            self.readiness.shutdown()
        if self._maintenance is not None:
            self._maintenance.join()
            self._maintenance = None
        if self.control is not None:
            self.control.close_streams()
        if self._server is not None:
            self._server.stop(grace).wait()
        if self._admission is not None:
            self._admission.close()
        if self.writer is not None:
            self.writer.stop()
        if self.forwarder is not None:
            self.forwarder.stop()
        if self.listeners is not None:
            self.listeners.shutdown()  # the action engine's stops it
        self._close_database()

    def _maintain(self) -> None:
        """Lift dismissals whose end time passed, forget old hourly counts and end abandoned
        self-checks, every ``maintenance_interval``."""
        while not self._stopping.wait(self.settings.maintenance_interval):
            store = self.store
            try:
                if store is not None:
                    store.expire_dismissals()
                    store.prune_hours()
                if self.checks is not None:
                    self.checks.sweep()
            except Exception:
                _log.exception(
                    "faultlens: maintenance failed (dismissals, hourly counts, self-checks)"
                )

    def _close_database(self) -> None:
        """Close the stores and the database (idempotent)."""
        if self.database is not None:
            self.database.close()


def _server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    try:
        key = tls.key_file.read_bytes()
        chain = tls.certificate_file.read_bytes()
        client_ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
    except OSError as exc:
        raise ProcessorError(f"cannot read a TLS file: {exc}") from exc
    return grpc.ssl_server_credentials(
        [(key, chain)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
