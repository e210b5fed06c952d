"""Readiness: the standard ``grpc.health.v1.Health`` service on the processor's port.

What a load balancer, a Kubernetes ``grpc`` probe or ``grpc_health_probe`` asks::

    service ""                                          overall readiness
    service "opentelemetry.proto.collector.*.v1.*"      OTLP ingest (traces, logs, metrics)
    service "faultlens.v1.Control"                      the control API

Ingest and the overall status are ``SERVING`` while the store commits and
``NOT_SERVING`` from the first commit that fails (disk full, read-only file) until
one succeeds again; the control API stays ``SERVING`` (it reads). While the store
fails, :class:`Readiness` probes it every ``probe_interval`` seconds with a small
write of its own (:meth:`~faultlens_collector.groups.store.GroupStore.probe`),
so a processor taken out of rotation — and so receiving no ingest to find out —
comes back by itself once the store can commit. When the processor stops, every
service turns ``NOT_SERVING`` before the server stops accepting calls.

``Check`` and ``Watch`` are served without the bearer token (probes cannot send
one; the answer reveals nothing but the status); TLS applies as to every call.
The service is the official ``grpcio-health-checking`` implementation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from faultlens_collector.control.methods import SERVICE as CONTROL_SERVICE
from faultlens_collector.ingest.forward import METHODS as OTLP_METHODS

_log = logging.getLogger(__name__)

SERVICE: Final = "grpc.health.v1.Health"
#: Health methods served without the bearer token.
OPEN_METHODS: Final = frozenset({f"/{SERVICE}/Check", f"/{SERVICE}/Watch"})
#: The OTLP services whose status follows the store.
INGEST_SERVICES: Final = tuple(sorted({path.split("/")[1] for path in OTLP_METHODS.values()}))
SERVING: Final = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING
DEFAULT_PROBE_INTERVAL: Final = 2.0


class Readiness:
    """The processor's health service and the store state behind it (thread-safe).

    ``probe`` commits a small write or raises; ``on_recovered`` is told when a
    probe succeeded while the store was failing (the writer logs the recovery).
    """

    def __init__(
        self,
        probe: Callable[[], None],
        *,
        on_recovered: Callable[[], None] | None = None,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
    ) -> None:
        self.servicer = health.HealthServicer()
        self._probe = probe
        #: Told when a probe succeeded while the store was failing (the writer logs it).
        self.on_recovered = on_recovered
        self._interval = probe_interval
        self._lock = threading.Lock()
        self._store_ok = True
        self._failed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.servicer.set(CONTROL_SERVICE, SERVING)
        self._publish(True)

    @property
    def serving(self) -> bool:
        """Whether ingest (and the overall status) is ``SERVING``."""
        return self._store_ok and not self._stopping.is_set()

    def add_to(self, server: grpc.Server) -> None:
        """Serve ``grpc.health.v1.Health`` on ``server``."""
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    def start(self) -> None:
        """Start the probe thread (it only works while the store is failing)."""
        self._thread = threading.Thread(target=self._run, name="faultlens-readiness", daemon=True)
        self._thread.start()

    def store_state(self, ok: bool) -> None:
        """The store commits (True) or cannot commit (False)."""
        with self._lock:
            if ok == self._store_ok or self._stopping.is_set():
                return
            self._store_ok = ok
            self._publish(ok)
        if ok:
            self._failed.clear()
        else:
            self._failed.set()

    def shutdown(self) -> None:
        """Every service ``NOT_SERVING`` for good (the processor is stopping)."""
        with self._lock:
            self._stopping.set()
        self._failed.set()
        self.servicer.enter_graceful_shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _publish(self, ok: bool) -> None:
        status = SERVING if ok else NOT_SERVING
        for service in ("", *INGEST_SERVICES):
            self.servicer.set(service, status)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._failed.wait()
            if self._stopping.wait(self._interval):
                return
            if self._store_ok:
                continue
            try:
                self._probe()
            except Exception as exc:
                _log.debug("faultlens: the store still cannot commit: %s", exc)
                continue
            if self.on_recovered is not None:
                self.on_recovered()
            self.store_state(True)
