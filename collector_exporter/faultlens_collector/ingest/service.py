"""OTLP/gRPC ingest: TraceService, LogsService and MetricsService ``Export``.

Handlers receive the raw request bytes (no generated servicer), so every way a
request can be wrong gets the right status instead of a crash:

* a request whose frame (resources, scopes, the list of spans or records) does
  not decode → ``INVALID_ARGUMENT`` naming the message type;
* invalid failures — a span or record holding an ``exception`` marker that does
  not decode, an ``exception`` event with neither type nor message → success
  with ``partial_success`` counting the rejected spans or log records and
  saying why; values it reads nested past the parser's limit (skipped) → success
  with a ``partial_success`` warning (rejected 0, the count in ``error_message``).
  Spans and records without failures are not decoded at all (the next hop
  validates what it reads; :mod:`.framing`);
* an empty request → success, nothing written;
* more than the size limit → ``RESOURCE_EXHAUSTED`` (enforced by gRPC before
  the handler runs; ``grpc.max_receive_message_length``);
* overload (too many requests waiting for a thread, see :mod:`.admission`;
  the store's write queue full) or a store that cannot commit →
  ``UNAVAILABLE`` with a RetryInfo delay (see :mod:`.retry_info`); nothing of
  that request was kept, so the client's retry loses nothing and counts nothing
  twice;
* a commit in doubt (the link to a PostgreSQL server broke during ``COMMIT`` and the
  server could not say in time whether it committed) → ``UNAVAILABLE`` *without*
  RetryInfo: like a lost connection, an answer that promises nothing either way.

A request is acknowledged only after the transaction holding its failures
committed (and the listener saw the changes,
:mod:`~faultlens_collector.groups.writer`). Acknowledged requests are then handed
to the forwarder, unchanged. What is read from a request beyond its failures is
what the :class:`~faultlens_collector.processor.listeners.Listener` asks for (its
``interest``): the attributes of each occurrence, the keys of the spans that
ended without failure (:mod:`.successes`), handed to ``on_success`` after the
request's failures committed, and the span-tree facts of the spans with failures
and of the spans the listener wants (root-cause linking), handed to ``on_spans``
likewise. Metrics requests go to ``on_metrics``. A listener that raises is logged
and never fails the export.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from faultlens_collector.groups.store import CommitInDoubt
from faultlens_collector.groups.writer import BatchWriter, GaveUp, Overloaded
from faultlens_collector.ingest.extract import Extraction, extract_logs, extract_spans
from faultlens_collector.ingest.forward import Forwarder
from faultlens_collector.ingest.retry_info import abort_unavailable
from faultlens_collector.ingest.successes import success_keys
from faultlens_collector.processor.listeners import Listener
from faultlens_collector.processor.selfmetrics import ProcessorMetrics

_log = logging.getLogger(__name__)
_REQUEST_NAMES: Final = {
    "traces": "ExportTraceServiceRequest",
    "logs": "ExportLogsServiceRequest",
    "metrics": "ExportMetricsServiceRequest",
}

TRACE_SERVICE: Final = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE: Final = "opentelemetry.proto.collector.logs.v1.LogsService"
METRICS_SERVICE: Final = "opentelemetry.proto.collector.metrics.v1.MetricsService"


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Tuning of the ingest path."""

    #: How long a handler waits for its commit before answering ``UNAVAILABLE``.
    commit_timeout_seconds: float = 10.0
    #: The retry delay announced when shedding load.
    retry_delay_seconds: float = 1.0


class IngestService:
    """The three OTLP services, writing failures through one :class:`BatchWriter`."""

    def __init__(
        self,
        writer: BatchWriter,
        metrics: ProcessorMetrics,
        *,
        settings: IngestSettings | None = None,
        forwarder: Forwarder | None = None,
        listener: Listener | None = None,
    ) -> None:
        self._writer = writer
        self._listener = listener
        interest = listener.interest if listener is not None else None
        attributes = interest is not None and interest.attributes
        self._success_keys = interest.success_keys if interest is not None else ()
        trees = interest.span_trees if interest is not None else None
        self._span_trees = trees
        self._extract_spans = functools.partial(extract_spans, attributes=attributes, trees=trees)
        self._extract_logs = functools.partial(extract_logs, attributes=attributes, trees=trees)
        self._metrics = metrics
        self._settings = settings or IngestSettings()
        self._forwarder = forwarder
        self._attrs = {signal: {"signal": signal} for signal in ("traces", "logs", "metrics")}

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """Generic handlers for the three services (raw bytes in and out)."""
        return [
            grpc.method_handlers_generic_handler(
                service, {"Export": grpc.unary_unary_rpc_method_handler(handler)}
            )
            for service, handler in (
                (TRACE_SERVICE, self.export_traces),
                (LOGS_SERVICE, self.export_logs),
                (METRICS_SERVICE, self.export_metrics),
            )
        ]

    def export_traces(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        """TraceService/Export."""
        found = self._extract(self._extract_spans, body, "traces", context)
        self._commit(found, "traces", context)
        self._span_facts(found)
        if self._success_keys:
            _notify(self._successes, body, "success")
        self._forward("traces", body)
        return _response(trace_service_pb2.ExportTraceServiceResponse, "rejected_spans", found)

    def export_logs(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        """LogsService/Export."""
        found = self._extract(self._extract_logs, body, "logs", context)
        self._commit(found, "logs", context)
        self._span_facts(found)
        self._forward("logs", body)
        return _response(logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records", found)

    def export_metrics(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        """MetricsService/Export: metrics carry no failures; they go to the listener."""
        request = self._decode_metrics(body, context)
        self._metrics.received.add(1, self._attrs["metrics"])
        if self._listener is not None and request.resource_metrics:
            _notify(self._listener.on_metrics, request, "metrics")
        self._forward("metrics", body)
        return bytes(metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString())

    def _span_facts(self, found: Extraction) -> None:
        """The span-tree facts of a committed request to the listener (linking)."""
        trees = self._span_trees
        if trees is None:
            return
        trees.offer(found.offered)
        if found.spans:
            assert self._listener is not None  # span trees are read only for a listener
            _notify(self._listener.on_spans, found.spans, "span trees")

    def _successes(self, body: bytes) -> None:
        """Each distinct key of the request's successful spans to the listener, once."""
        assert self._listener is not None  # there are success keys only with a listener
        on_success = self._listener.on_success
        for key in success_keys(body, self._success_keys):
            on_success(dict(key))

    def _extract(
        self,
        extract: Callable[[bytes], Extraction],
        body: bytes,
        signal: str,
        context: grpc.ServicerContext,
    ) -> Extraction:
        try:
            found = extract(body)
        except DecodeError as exc:
            self._metrics.refused.add(1, {"reason": "undecodable"})
            name = _REQUEST_NAMES[signal]
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {name}: {exc}"
            )
        except Exception:  # a defect here must be a status, never a dead server
            _log.exception("faultlens: could not read a %s request", signal)
            context.abort(grpc.StatusCode.INTERNAL, f"faultlens could not read the {signal}")
        if found.items:
            self._metrics.received.add(found.items, self._attrs[signal])
        if found.rejected:
            self._metrics.rejected.add(found.rejected, {"signal": signal, "reason": "invalid"})
        if found.skipped:
            self._metrics.skipped.add(found.skipped, self._attrs[signal])
        return found

    def _commit(self, found: Extraction, signal: str, context: grpc.ServicerContext) -> None:
        if not found.occurrences:
            return
        delay = self._settings.retry_delay_seconds
        try:
            self._writer.write(found.occurrences, self._settings.commit_timeout_seconds)
        except (Overloaded, GaveUp) as shed:
            self._metrics.rejected.add(found.items, {"signal": signal, "reason": "overloaded"})
            abort_unavailable(context, str(shed), delay)
        except CommitInDoubt as doubt:
            self._metrics.rejected.add(found.items, {"signal": signal, "reason": "in_doubt"})
            context.abort(grpc.StatusCode.UNAVAILABLE, str(doubt))
        except Exception as error:
            self._metrics.rejected.add(found.items, {"signal": signal, "reason": "store_error"})
            abort_unavailable(context, f"faultlens could not store the failures: {error}", delay)
        self._metrics.failures.add(len(found.occurrences), self._attrs[signal])

    def _forward(self, signal: str, body: bytes) -> None:
        if self._forwarder is not None:
            self._forwarder.enqueue(signal, body)

    def _decode_metrics(self, body: bytes, context: grpc.ServicerContext) -> Any:
        try:
            return metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            self._metrics.refused.add(1, {"reason": "undecodable"})
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request is not a valid {_REQUEST_NAMES['metrics']}: {exc}",
            )


def _notify(listener: Callable[[Any], object], argument: Any, what: str) -> None:
    """Call a listener; its failure (or the failure to read what it asked for) is
    logged and never fails the export."""
    try:
        listener(argument)
    except Exception:
        _log.exception("faultlens: the %s listener failed", what)


def _response(response_type: Any, rejected_field: str, found: Extraction) -> bytes:
    """The serialized export response, with ``partial_success`` when items were rejected,
    or values skipped (then a warning: an ``error_message`` with a rejected count of 0,
    as the OTLP specification allows)."""
    response = response_type()
    if found.rejected or found.skipped:
        setattr(response.partial_success, rejected_field, found.rejected)
        response.partial_success.error_message = found.message
    return bytes(response.SerializeToString())
