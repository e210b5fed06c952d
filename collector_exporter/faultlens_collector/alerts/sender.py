"""Deliver alerts from the durable outbox with the official OTLP log exporter.

Alerts are written to the outbox (the store) before anything tries to send
them. :class:`AlertSender` drains it on its own thread (a
:class:`~faultlens_collector.delivery.Deliverer`, the queue-and-worker the forwarder
uses too): it turns a batch of pending alerts into OpenTelemetry log records
(``event_name`` and the ``event.name`` attribute ``faultlens.alert``,
``faultlens.alert.kind``, the group's attributes; docs/actions.md, "Alerts") and
exports them with
``opentelemetry.exporter.otlp.proto.grpc._log_exporter.OTLPLogExporter``. Only
when the exporter reports success are they marked sent; on failure (the next
hop is down, refuses, times out) the batch stays pending and is retried with
exponential backoff (``initial_backoff`` doubling up to ``max_backoff``, with
full jitter), for as long as it takes — across restarts too, since the outbox is
durable. An alert that cannot be exported at all (the exporter raises on it,
which no next hop can fix) is logged with its id and set aside, so it cannot
block the alerts behind it.

Delivery is *at least once*: if the next hop received a batch but its answer was
lost (or the processor stopped between sending and marking), the batch is sent
again. Processors sharing an outbox (the PostgreSQL backend) each take the alerts no
other holds: an alert is sent by one of them, and sent by another if the first
stops (or dies) before the next hop acknowledged it. Every record carries
``faultlens.alert.id`` for receivers that must drop such duplicates. Alerts are sent
in the order they were raised.

Where alerts go is decided in one place, :func:`otlp_log_exporter`, for
``faultlens serve --alerts``, ``[alerts] target`` and
``ActionEngine(alerts_endpoint=...)`` alike: as everywhere in faultlens
(``--forward``, the control client, ``FAULTLENS_ENDPOINT``), ``https://`` is TLS and
``host:port`` or ``http://`` plaintext; ``[alerts] insecure`` overrides.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from faultlens import __version__, semconv
from faultlens.resilience import exponential
from faultlens.shared import parse_endpoint, report_internal_error
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from faultlens_collector.alerts.outbox import AlertOutbox
from faultlens_collector.alerts.records import Alert, StoredAlert
from faultlens_collector.delivery import DONE, Deliverer, OutageLog, Outcome, retry

_log = logging.getLogger("faultlens.actions")

#: The event name of every alert log record (``event_name`` and ``event.name``).
EVENT_NAME: Final = "faultlens.alert"
_SEVERITY: Final = {
    "low": SeverityNumber.INFO,
    "medium": SeverityNumber.WARN,
    "high": SeverityNumber.ERROR,
    "critical": SeverityNumber.FATAL,
}
_SCOPE: Final = InstrumentationScope(f"{semconv.INSTRUMENTATION_SCOPE}.alerts", __version__)
DEFAULT_RESOURCE: Final = Resource.create({"service.name": "faultlens-processor"})


def otlp_log_exporter(
    target: str,
    *,
    insecure: bool | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> LogRecordExporter:
    """The official OTLP/gRPC log exporter for ``target``: ``https://host:port`` is TLS,
    ``host:port`` and ``http://host:port`` are plaintext; ``insecure`` (when not None)
    overrides that for a target without ``https://``. A missing port means 4317.
    Raises ``ValueError`` naming the problem for a malformed target."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    address, secure = parse_endpoint(target)
    plaintext = not secure if insecure is None else insecure and not secure
    return OTLPLogExporter(
        endpoint=address,
        insecure=plaintext,
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


class _Outbox:
    """The outbox as the deliverer's queue: batches of pending alerts (they stay pending
    until marked sent); :meth:`wake` ends the wait for new ones."""

    def __init__(self, outbox: AlertOutbox, batch_size: int) -> None:
        self._outbox = outbox
        self._batch_size = batch_size
        self._wake = threading.Event()
        self._closed = False
        self.outage = OutageLog(_log, "sending alerts")

    def take(self, timeout: float) -> list[StoredAlert] | None:
        if self._closed:
            return None
        self._wake.clear()  # an alert added from now on sets it again: never missed
        try:
            batch = self._outbox.pending_alerts(self._batch_size)
        except Exception as exc:  # the outbox (a store) is away; the alerts wait in it
            self.outage.failed(exc)
            self._wake.wait(timeout)
            return None
        self.outage.worked()
        if batch:
            return batch
        self._wake.wait(timeout)
        return None

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()


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
        self._queue = _Outbox(outbox, batch_size)
        self._deliverer = Deliverer(
            "alerts",
            self._queue,
            self._send,
            backoff=exponential(initial_backoff, cap=max_backoff),
            idle_wait=idle_wait,
            on_retry=lambda batch, delay: _log.warning(
                "faultlens: alerts not delivered; retrying in %.1f s", delay
            ),
        )
        #: Since start: alerts acknowledged by the next hop, and alerts that could not be
        #: exported at all (logged with their id, then dropped).
        self.sent = 0
        self.undeliverable = 0

    @property
    def failures(self) -> int:
        """Failed export attempts since start."""
        return self._deliverer.failures

    def start(self) -> None:
        self._deliverer.start()

    def wake(self) -> None:
        """Tell the sender that alerts were added (it also polls every ``idle_wait``)."""
        self._queue.wake()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the batch in flight (given up to half of ``timeout``), then shut
        the exporter down. Unsent alerts stay in the outbox."""
        self._deliverer.stop(timeout / 2)
        try:
            self._exporter.shutdown()  # type: ignore[no-untyped-call, unused-ignore]
        except Exception:
            report_internal_error("actions: alert exporter shutdown")
        self._deliverer.join(timeout / 2)
        try:
            self._outbox.release_alerts()  # a shared outbox hands them to another processor
        except Exception:
            report_internal_error("actions: alert outbox release")

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

    def _send(self, batch: list[StoredAlert]) -> Outcome:
        """Export one batch: done when acknowledged, retried when the export failed
        (the alerts stay pending)."""
        try:
            records = [to_log_record(stored.alert, self._resource) for stored in batch]
            result = self._exporter.export(records)
        except Exception:
            # Not the next hop being down (that is a FAILURE result): something in the
            # batch cannot be exported at all. Find it so it cannot block the rest.
            return DONE if self._send_one_by_one(batch) else retry()
        if result != LogRecordExportResult.SUCCESS:
            return retry()
        self._sent([stored.seq for stored in batch])
        return DONE

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
                return False
            self._sent([stored.seq])
        return True

    def _sent(self, seqs: list[int]) -> None:
        self.sent += len(seqs)
        try:
            self._outbox.mark_alerts_sent(seqs, self._clock())
        except Exception as exc:  # delivered, not marked: sent again later (at least once)
            self._queue.outage.failed(exc)
