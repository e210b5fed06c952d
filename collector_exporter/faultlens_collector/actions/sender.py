"""Deliver alerts from the durable outbox with the official OTLP log exporter.

Alerts are written to the outbox (the store) before anything tries to send
them. :class:`AlertSender` drains it on its own thread: it turns a batch of
pending alerts into OpenTelemetry log records (CONTRACT §6: ``event_name`` and
the ``event.name`` attribute ``faultlens.alert``, ``faultlens.alert.kind``, the
group's attributes) and exports them with
``opentelemetry.exporter.otlp.proto.grpc._log_exporter.OTLPLogExporter``. Only
when the exporter reports success are they marked sent; on failure (the next
hop is down, refuses, times out) the batch stays pending and is retried with
exponential backoff (``initial_backoff`` doubling up to ``max_backoff``, ±20 %
jitter), for as long as it takes — across restarts too, since the outbox is
durable. An alert that cannot be exported at all (the exporter raises on it,
which no next hop can fix) is logged with its id and set aside, so it cannot
block the alerts behind it.

Delivery is *at least once*: if the next hop received a batch but its answer was
lost (or the processor stopped between sending and marking), the batch is sent
again. Every record carries ``faultlens.alert.id`` for receivers that must drop
such duplicates. Alerts are sent in the order they were raised.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from faultlens import semconv
from faultlens._version import __version__
from faultlens.recorder import report_internal_error
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from faultlens_collector.actions.alerts import EVENT_NAME
from faultlens_collector.actions.records import Alert, StoredAlert
from faultlens_collector.actions.store import AlertOutbox

_log = logging.getLogger("faultlens.actions")

_SEVERITY: Final = {
    "low": SeverityNumber.INFO,
    "medium": SeverityNumber.WARN,
    "high": SeverityNumber.ERROR,
    "critical": SeverityNumber.FATAL,
}
_SCOPE: Final = InstrumentationScope(f"{semconv.INSTRUMENTATION_SCOPE}.alerts", __version__)
DEFAULT_RESOURCE: Final = Resource.create({"service.name": "faultlens-processor"})


def otlp_log_exporter(
    endpoint: str,
    *,
    insecure: bool | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> LogRecordExporter:
    """The official OTLP/gRPC log exporter for ``endpoint`` (``host:port``, or
    ``http://host:port`` for plaintext)."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    return OTLPLogExporter(
        endpoint=endpoint,
        insecure=insecure,
        headers=dict(headers) if headers else None,
        timeout=timeout,
    )


def to_log_record(alert: Alert, resource: Resource = DEFAULT_RESOURCE) -> ReadableLogRecord:
    """The OTLP log record that carries ``alert``."""
    record = LogRecord(
        timestamp=int(alert.created_at * 1e9),
        observed_timestamp=time.time_ns(),
        severity_text=_SEVERITY[alert.severity].name,
        severity_number=_SEVERITY[alert.severity],
        body=alert.body,
        attributes={**alert.attributes, semconv.EVENT_NAME: EVENT_NAME},
        event_name=EVENT_NAME,
    )
    return ReadableLogRecord(log_record=record, resource=resource, instrumentation_scope=_SCOPE)


class AlertSender:
    """Drains ``outbox`` through ``exporter`` on a background thread."""

    def __init__(
        self,
        outbox: AlertOutbox,
        exporter: LogRecordExporter,
        *,
        clock: Callable[[], float] = time.time,
        resource: Resource = DEFAULT_RESOURCE,
        batch_size: int = 64,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        idle_wait: float = 5.0,
    ) -> None:
        self._outbox = outbox
        self._exporter = exporter
        self._clock = clock
        self._resource = resource
        self.batch_size = batch_size
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.idle_wait = idle_wait
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: Since start: alerts acknowledged by the next hop, failed export attempts, and
        #: alerts that could not be exported at all (logged with their id, then dropped).
        self.sent = 0
        self.failures = 0
        self.undeliverable = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="faultlens-alerts", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tell the sender that alerts were added (it also polls every ``idle_wait``)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the batch in flight (given up to half of ``timeout``), then shut
        the exporter down. Unsent alerts stay in the outbox."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout / 2)
        try:
            self._exporter.shutdown()  # type: ignore[no-untyped-call, unused-ignore]
        except Exception:
            report_internal_error("actions: alert exporter shutdown")
        if self._thread is not None:
            self._thread.join(timeout / 2)
            self._thread = None

    def probe(self) -> tuple[bool, str]:
        """Export an empty batch (an OTLP request with no records): whether the alert
        target answered, and what went wrong when it did not. Sends no alert."""
        try:
            result = self._exporter.export([])
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if result != LogRecordExportResult.SUCCESS:
            return False, "the export failed (unreachable, refused or timed out)"
        return True, "answered"

    def send_batch(self) -> bool | None:
        """Send one batch of pending alerts: True if acknowledged, False if the export
        failed (they stay pending), None if there was nothing to send."""
        batch = self._outbox.pending_alerts(self.batch_size)
        if not batch:
            return None
        try:
            records = [to_log_record(stored.alert, self._resource) for stored in batch]
            result = self._exporter.export(records)
        except Exception:
            # Not the next hop being down (that is a FAILURE result): something in the
            # batch cannot be exported at all. Find it so it cannot block the rest.
            return self._send_one_by_one(batch)
        if result != LogRecordExportResult.SUCCESS:
            self.failures += 1
            return False
        self._sent([stored.seq for stored in batch])
        return True

    def _send_one_by_one(self, batch: list[StoredAlert]) -> bool:
        for stored in batch:
            try:
                result = self._exporter.export([to_log_record(stored.alert, self._resource)])
            except Exception:
                _log.exception(
                    "faultlens: alert %s cannot be exported; it is dropped", stored.alert.id
                )
                self.undeliverable += 1
                self._sent([stored.seq])
                continue
            if result != LogRecordExportResult.SUCCESS:
                self.failures += 1
                return False
            self._sent([stored.seq])
        return True

    def _sent(self, seqs: list[int]) -> None:
        self._outbox.mark_alerts_sent(seqs, self._clock())
        self.sent += len(seqs)

    def _run(self) -> None:
        backoff = self.initial_backoff
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                result = self.send_batch()
            except Exception:
                report_internal_error("actions: alert sending")
                result = False
            if result is None:
                self._wake.wait(self.idle_wait)
            elif result:
                backoff = self.initial_backoff
            else:
                _log.warning("faultlens: alerts not delivered; retrying in %.1f s", backoff)
                self._stopping.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.max_backoff)
