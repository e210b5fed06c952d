"""A fleet-wide kill switch: follow the halts a faultlens processor holds.

The processor halts a key — ``{"service.name": "payments"}``, a span name, any
attribute — when a halt rule trips or an operator runs ``faultlens halts
start``, and keeps it until ``faultlens halts resume``. :class:`RemoteHalts`
streams those halts (the ``faultlens.v1.Control/WatchHalts`` RPC) so that
every replica of a service refuses work while its key is halted::

    from faultlens.resilience import FailureTracker
    from faultlens.resilience import RemoteHalts

    fleet = RemoteHalts(context={"service.name": "payments"})  # FAULTLENS_ENDPOINT
    tracker = FailureTracker("payments", threshold=5, halt_sources=[fleet])

    @tracker.track(lambda order: {"span.name": "charge"})
    def charge(order): ...          # HaltedError while payments (or its charge) is halted

or on its own: ``fleet.guard({"span.name": "charge"})``.

**Matching.** ``context`` is merged into every key asked about, and a halt covers a
key that contains all of its items (a halt on ``service.name=payments`` stops
``{service.name: payments, span.name: charge}``).

**Connection.** ``endpoint`` and ``headers`` default to ``FAULTLENS_ENDPOINT`` and
``FAULTLENS_HEADERS`` (as for the faultlens exporter; the processor's bearer token
goes in ``authorization=Bearer%20<token>`` or ``token=``). A background thread
keeps one stream open: the processor sends the halts in force, then every
change, and a heartbeat every ``heartbeat`` seconds; a stream silent for three
heartbeats is treated as dead. When the stream fails or ends (the processor
stopped, restarted, is unreachable) the guard reconnects on its own, waiting
``backoff`` between attempts (exponential with full jitter, 0.5 s doubling to
30 s by default); the first answer after a reconnect is a full snapshot, so
halts lifted or started meanwhile are picked up.

**While the processor is unreachable** the guard keeps the last halts it knew
and says so: :meth:`RemoteHalts.status` (``state`` ``unreachable``, ``stale``,
``last_error``) and one warning through the ``faultlens`` logger per lost
connection (and one line when it is back). Before the first answer no halt is
known; with ``fail_closed=True`` every key counts as halted until then.

Needs ``grpcio`` and ``protobuf`` (dependencies of the OpenTelemetry OTLP
exporter), imported when the first guard is created; nothing from
``faultlens_collector`` (see :mod:`faultlens.resilience._halt_wire`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Literal

from faultlens._endpoint import Headers, resolve
from faultlens._halt_keys import KeyValue, covers, make_key
from faultlens.resilience import _halt_wire
from faultlens.resilience import _report as report
from faultlens.resilience._backoff import Backoff, exponential
from faultlens.resilience._halts import Halt

_log = logging.getLogger("faultlens")

State = Literal["connecting", "connected", "unreachable", "closed"]
DEFAULT_HEARTBEAT: Final = 15.0
#: A stream silent for this many heartbeats is dead.
SILENT_HEARTBEATS: Final = 3
DEFAULT_BACKOFF: Final = exponential(0.5, cap=30.0)


@dataclass(frozen=True, slots=True)
class RemoteHaltsStatus:
    """Where the guard stands.

    ``synced``: it received the processor's halts at least once; ``stale``: it has
    but is not connected now, so the halts it applies are the last it knew.
    ``since``: when ``state`` began.
    """

    endpoint: str
    state: State
    synced: bool
    since: datetime
    halts: int
    version: int
    last_error: str | None

    @property
    def stale(self) -> bool:
        return self.synced and self.state != "connected"


class RemoteHalts:
    """Follows a processor's halts; a :class:`~faultlens.resilience.HaltSource`
    (see the module docstring). ``start=False`` defers the connection to
    :meth:`start`. ``on_change`` is called (on the guard's thread) with the halts in
    force after every change."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: Headers | None = None,
        token: str | None = None,
        root_certificates: bytes | None = None,
        context: Mapping[str, KeyValue] | None = None,
        heartbeat: float = DEFAULT_HEARTBEAT,
        backoff: Backoff = DEFAULT_BACKOFF,
        fail_closed: bool = False,
        on_change: Callable[[tuple[Halt, ...]], None] | None = None,
        environ: Mapping[str, str] | None = None,
        start: bool = True,
        register: bool = True,
    ) -> None:
        self.endpoint, secure, metadata = resolve(endpoint, headers, environ)
        if token:
            metadata = (
                *(item for item in metadata if item[0] != "authorization"),
                ("authorization", f"Bearer {token}"),
            )
        if heartbeat < 1:
            raise ValueError("faultlens: heartbeat is at least 1 second")
        self._metadata = metadata
        self._secure = secure
        self._root_certificates = root_certificates
        self._context = dict(context or {})
        make_key(self._context)  # a malformed context fails here, not on every call
        self._heartbeat = heartbeat
        self._backoff = backoff
        self._fail_closed = fail_closed
        self._on_change = on_change
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._halts: tuple[Halt, ...] = ()
        self._by_id: dict[str, Halt] = {}
        self._version = 0
        self._synced = False
        self._synced_event = threading.Event()
        self._connected = False
        self._state: State = "connecting"
        self._since = datetime.now(timezone.utc)
        self._last_error: str | None = None
        self._last_activity = time.monotonic()
        self._call: Any = None
        self._channel: Any = None
        self._threads: list[threading.Thread] = []
        self._created = self._since
        if register:
            report.register(self)
        if start:
            self.start()

    def __repr__(self) -> str:
        return f"<RemoteHalts {self.endpoint} {self._state} halts={len(self._halts)}>"

    # lifecycle
    def start(self) -> None:
        """Open the channel and start following (idempotent)."""
        if self._threads:
            return
        import grpc

        if self._secure:
            credentials = grpc.ssl_channel_credentials(root_certificates=self._root_certificates)
            self._channel = grpc.secure_channel(self.endpoint, credentials)
        else:
            self._channel = grpc.insecure_channel(self.endpoint)
        wire = _halt_wire.messages()
        self._watch_halts = self._channel.unary_stream(
            _halt_wire.METHOD,
            request_serializer=wire.WatchHaltsRequest.SerializeToString,
            response_deserializer=wire.HaltEvent.FromString,
        )
        self._request = wire.WatchHaltsRequest(heartbeat_seconds=round(self._heartbeat))
        self._threads = [
            threading.Thread(target=self._follow, name="faultlens-halts", daemon=True),
            threading.Thread(target=self._watchdog, name="faultlens-halts-watchdog", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop following; the halts last known stay in force for :meth:`halt_for`."""
        self._closing.set()
        call = self._call
        if call is not None:
            call.cancel()
        for thread in self._threads:
            thread.join(timeout)
        if self._channel is not None:
            self._channel.close()
        self._set_state("closed", None)

    def __enter__(self) -> RemoteHalts:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # what applications call
    def status(self) -> RemoteHaltsStatus:
        """A snapshot of the connection state and of what the guard knows (a method, as
        :meth:`CircuitBreaker.status` and :meth:`FailureTracker.status` are)."""
        with self._lock:
            return RemoteHaltsStatus(
                endpoint=self.endpoint,
                state=self._state,
                synced=self._synced,
                since=self._since,
                halts=len(self._halts),
                version=self._version,
                last_error=self._last_error,
            )

    def halts(self) -> tuple[Halt, ...]:
        """The halts in force, as last received."""
        return self._halts

    def health(self) -> report.ComponentHealth:
        """For :func:`faultlens.resilience.health`: ``unhealthy`` while a halt that can
        cover this application's work is in force (its items agree with ``context``),
        ``degraded`` while the processor is unreachable or not heard from yet."""
        status = self.status()
        relevant = [
            halt
            for halt in self._halts
            if all(self._context.get(name, value) == value for name, value in halt.key)
        ]
        verdict: report.HealthStatus = "healthy"
        if relevant:
            verdict = "unhealthy"
        elif status.state != "connected" or not status.synced:
            verdict = "degraded"
        return report.ComponentHealth(
            "halt_guard",
            self.endpoint,
            verdict,
            {
                "state": status.state,
                "synced": status.synced,
                "halts": [halt.as_dict() for halt in relevant],
                "last_error": status.last_error,
            },
        )

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until the processor's halts arrived once (or ``timeout``); True if so."""
        return self._synced_event.wait(timeout)

    def halt_for(self, key: Mapping[str, KeyValue] | None) -> Halt | None:
        """The halt in force that covers ``context`` + ``key``, or None (the
        :class:`~faultlens.resilience.HaltSource` method)."""
        halts = self._halts
        if not halts:
            if self._fail_closed and not self._synced:
                return self._unknown(key)
            return None
        wanted = make_key({**self._context, **dict(key or {})})
        for halt in halts:
            if covers(halt.key, wanted):
                return halt
        return None

    def guard(self, key: Mapping[str, KeyValue] | None = None) -> None:
        """Raise :class:`~faultlens.resilience.HaltedError` when a halt covers the key."""
        halt = self.halt_for(key)
        if halt is not None:
            raise halt.error()

    def _unknown(self, key: Mapping[str, KeyValue] | None) -> Halt:
        return Halt(
            source="faultlens:remote",
            key=make_key({**self._context, **dict(key or {})}),
            reason=f"the halts of {self.endpoint} are not known yet (fail_closed)",
            since=self._created,
        )

    # the stream
    def _follow(self) -> None:
        retry = 0
        while not self._closing.is_set():
            error = self._stream()
            if self._closing.is_set():
                return
            self._lost(error)
            retry = 1 if self._connected else retry + 1
            self._closing.wait(self._backoff.delay(retry))

    def _stream(self) -> str:
        """Follow one stream until it ends; why it ended."""
        import grpc

        self._connected = False
        self._last_activity = time.monotonic()
        try:
            call = self._watch_halts(self._request, metadata=self._metadata, timeout=None)
            self._call = call
            if self._closing.is_set():
                call.cancel()
            for event in call:
                self._last_activity = time.monotonic()
                if not self._connected:
                    self._connected = True
                self._apply(event)
            return "the processor ended the stream"
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            if code == grpc.StatusCode.CANCELLED and not self._closing.is_set():
                return f"no message for {SILENT_HEARTBEATS} heartbeats"
            return f"{code.name if code else 'error'}: {details}"
        except Exception as error:  # a defect here must not end the guard
            _log.exception("faultlens: the halt guard failed reading %s", self.endpoint)
            return repr(error)
        finally:
            self._call = None

    def _watchdog(self) -> None:
        limit = SILENT_HEARTBEATS * self._heartbeat
        while not self._closing.wait(min(self._heartbeat, 1.0)):
            call = self._call
            if call is not None and time.monotonic() - self._last_activity > limit:
                call.cancel()

    def _apply(self, event: Any) -> None:
        kind = event.kind
        if kind == _halt_wire.HEARTBEAT:
            if self._state != "connected":
                self._reconnected()
            return
        received = [_halt(message) for message in event.halts]
        with self._lock:
            if kind == _halt_wire.SNAPSHOT:
                self._by_id = dict(received)
            elif kind == _halt_wire.HALTED:
                self._by_id.update(received)
            elif kind == _halt_wire.RESUMED:
                for halt_id, _ in received:
                    self._by_id.pop(halt_id, None)
            else:
                return
            self._halts = tuple(self._by_id.values())
            self._version = event.version
            self._synced = True
        self._synced_event.set()
        if self._state != "connected":
            self._reconnected()
        if self._on_change is not None:
            try:
                self._on_change(self._halts)
            except Exception:
                _log.exception("faultlens: a halt guard on_change callback failed")

    # state changes, one log line each
    def _set_state(self, state: State, error: str | None) -> bool:
        with self._lock:
            if self._state == state and error == self._last_error:
                return False
            changed = self._state != state
            self._state = state
            self._last_error = error
            if changed:
                self._since = datetime.now(timezone.utc)
            return changed

    def _reconnected(self) -> None:
        was = self._state
        if self._set_state("connected", None) and was == "unreachable":
            _log.info(
                "faultlens: halt guard connected to %s again: %d halt(s) in force",
                self.endpoint,
                len(self._halts),
            )

    def _lost(self, error: str) -> None:
        if not self._set_state("unreachable", error):
            return
        if self._synced:
            _log.warning(
                "faultlens: halt guard lost %s (%s); keeping the %d halt(s) last known "
                "until it is back",
                self.endpoint,
                error,
                len(self._halts),
            )
        else:
            _log.warning(
                "faultlens: halt guard cannot reach %s (%s); no halt is known yet%s; retrying",
                self.endpoint,
                error,
                " and every key counts as halted until it answers" if self._fail_closed else "",
            )


def _halt(message: Any) -> tuple[str, Halt]:
    key: dict[str, KeyValue] = {}
    for item in message.key:
        kind = item.WhichOneof("value")
        if item.name and kind is not None:
            key[item.name] = getattr(item, kind)
    return message.id, Halt(
        source=f"faultlens:{message.rule}",
        key=make_key(key),
        reason=message.reason,
        since=datetime.fromtimestamp(message.since_unix_nano / 1e9, timezone.utc),
    )


__all__ = ["RemoteHalts", "RemoteHaltsStatus"]
