"""The ``faultlens`` traces exporter: the spans that carry failures, to the faultlens processor.

Registered as the ``faultlens`` entry point of ``opentelemetry_traces_exporter``,
so ``OTEL_TRACES_EXPORTER=otlp,faultlens`` sends every span to the usual OTLP
endpoint (a collector, Jaeger) and the spans that carry failures, unchanged, to
the processor as well. It wraps the official OTLP/gRPC span exporter, so
retries, backoff and the wire format are the OpenTelemetry SDK's own.

**What is forwarded.** A span carries a failure when it has a span event named
``exception`` (docs/sdk.md, "What goes on the wire" — what
``Span.record_exception``, the faultlens SDK and every OpenTelemetry SDK write).
Spans whose status is ERROR without such an event are *not* forwarded: they say
that something failed but not what (no
type, message or stack trace), so the processor could not group them; HTTP
instrumentations set ERROR on 5xx responses that the failing service records as
a failure of its own. Failures sent as log records
(``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN=logs``) travel on the logs signal: point
an OTLP logs exporter at the processor for those.

**Configuration.** Constructor arguments win over the environment:

``FAULTLENS_ENDPOINT`` (default ``localhost:4317``)
    ``host:port``, ``http://host:port`` (both plaintext) or ``https://host:port``
    (TLS with the system's root certificates, or the ``credentials`` given). A
    missing port means 4317.
``FAULTLENS_HEADERS``
    gRPC metadata as ``key=value,key=value``; values are URL-decoded and keys
    lower-cased, as for ``OTEL_EXPORTER_OTLP_HEADERS``.

No ``OTEL_EXPORTER_OTLP_*`` setting (endpoint, headers, certificates, timeout,
compression) applies to this exporter: the credentials meant for one backend
never reach another. A malformed ``FAULTLENS_ENDPOINT`` is reported once through
the ``faultlens`` logger and the default is used (configuration trouble never
stops the application); a malformed ``endpoint`` argument raises ``ValueError``.

**Randomness.** The OTLP exporter draws its retry jitter from the module
``random`` of ``opentelemetry.exporter.otlp.proto.grpc.exporter``; creating this
exporter points that name at faultlens' private generator
(:mod:`faultlens._randomness`), so retries to the processor — and those of an
``otlp`` exporter in the same process — never move a program's seeded global
``random`` state. Nothing else changes: the jitter is drawn the same way.

**Cost.** A batch is filtered in one pass that reads each span's events; a batch
without failures returns ``SUCCESS`` at once, without touching the network.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Final

import grpc
from faultlens import semconv
from faultlens.shared import (
    DEFAULT_ENDPOINT,
    ENDPOINT_ENV,
    HEADERS_ENV,
    Headers,
    parse_endpoint,
    resolve,
)
from faultlens.shared import random_generator as generator
from opentelemetry.exporter.otlp.proto.grpc import exporter as otlp_grpc_exporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

DEFAULT_TIMEOUT_SECONDS: Final = 10.0


class _Metadata(tuple[tuple[str, str], ...]):
    """gRPC metadata that is true even when empty.

    The OTLP exporter reads ``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`` when it is
    given falsy headers; an empty instance of this class keeps another backend's
    credentials out of requests to the processor.
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        return True


def carries_failure(span: ReadableSpan) -> bool:
    """Whether ``span`` has an ``exception`` event (a failure, docs/sdk.md).

    ``ReadableSpan.events`` copies the span's event list under a lock (0.4 µs
    even when it is empty), so the SDK's own list is asked for its length first:
    a span without events costs a few dozen nanoseconds. Spans that do not keep
    that list take the public path.
    """
    stored = getattr(span, "_events", None)
    if stored is not None and not stored:
        return False
    return any(event.name == semconv.EXCEPTION_EVENT_NAME for event in span.events)


def _private_retry_jitter() -> None:
    """Point the OTLP exporter's ``random`` at faultlens' generator (see the module docstring)."""
    if getattr(otlp_grpc_exporter, "random", None) is random:
        setattr(otlp_grpc_exporter, "random", generator)  # noqa: B010 (not exported)


class FaultlensSpanExporter(SpanExporter):
    """Forwards the spans that carry failures to the faultlens processor over OTLP/gRPC.

    See the module docstring for what counts as a failure and for the
    environment variables. ``endpoint`` and ``headers`` override
    ``FAULTLENS_ENDPOINT`` and ``FAULTLENS_HEADERS``; ``insecure`` overrides what
    the endpoint's scheme says; ``credentials``, ``timeout`` (seconds, default 10)
    and ``compression`` (default none) go to the wrapped ``OTLPSpanExporter``.
    ``environ`` replaces ``os.environ`` for the two variables (tests). The OTel
    SDK's configurator calls this with no arguments.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        headers: Headers | None = None,
        *,
        insecure: bool | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float | None = None,
        compression: grpc.Compression | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        target, secure, metadata = resolve(endpoint, headers, environ)
        if insecure is not None:
            secure = not insecure
        if secure and credentials is None:
            credentials = grpc.ssl_channel_credentials()
        self._endpoint = target
        self._secure = secure
        self._metadata = _Metadata(metadata)
        self._shut_down = False
        _private_retry_jitter()
        self._exporter = OTLPSpanExporter(
            endpoint=target,
            insecure=not secure,
            credentials=credentials if secure else None,
            headers=self._metadata,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT_SECONDS,
            compression=compression if compression is not None else grpc.Compression.NoCompression,
        )

    @property
    def endpoint(self) -> str:
        """Where failures go, as ``host:port``."""
        return self._endpoint

    @property
    def secure(self) -> bool:
        """Whether the channel uses TLS."""
        return self._secure

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The gRPC metadata sent with every request."""
        return tuple(self._metadata)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send the spans of ``spans`` that carry failures; SUCCESS at once if none does."""
        if self._shut_down:
            return SpanExportResult.FAILURE
        failures = [span for span in spans if carries_failure(span)]
        if not failures:
            return SpanExportResult.SUCCESS
        return self._exporter.export(failures)

    def shutdown(self) -> None:
        """Shut the wrapped exporter down; later exports fail."""
        self._shut_down = True
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Delegate to the wrapped exporter (which buffers nothing)."""
        return self._exporter.force_flush(timeout_millis)


__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "HEADERS_ENV",
    "FaultlensSpanExporter",
    "carries_failure",
    "parse_endpoint",
]
