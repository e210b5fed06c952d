"""One "service" of the root-cause end-to-end test: a small HTTP server, its own process,
its own ``service.name``, traced with the OpenTelemetry SDK and exported with the
official OTLP exporter (or the ``faultlens`` exporter, which sends only the spans that
carry failures), the W3C trace context propagated over HTTP.

``GET /work`` calls the downstream service (if any) in a CLIENT span and answers 200,
or 5xx when its work failed:

* ``--sdk plain``: plain OpenTelemetry — the failure escapes the server span, whose
  ``record_exception`` records it (no faultlens anywhere in the process);
* ``--sdk faultlens``: the work runs in a ``@faultlens.capture`` function that raises
  ``--raise TYPE`` *from* the downstream's HTTP error (a wrapped exception).

``--fail`` makes the service fail on its own (``TimeoutError``: a timed-out query).
It prints ``listening on PORT`` when ready and flushes its spans on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode


class ServiceError(Exception):
    """The failure a faultlens service raises from its downstream's error."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--endpoint", required=True, help="the faultlens processor")
    parser.add_argument("--downstream", default="")
    parser.add_argument("--sdk", choices=("plain", "faultlens"), default="plain")
    parser.add_argument("--exporter", choices=("otlp", "faultlens"), default="otlp")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--raise", dest="raise_type", default="ServiceError")
    args = parser.parse_args()

    provider = TracerProvider(resource=Resource.create({"service.name": args.name}))
    if args.exporter == "faultlens":
        from faultlens_collector.exporter import FaultlensSpanExporter

        exporter: Any = FaultlensSpanExporter(endpoint=args.endpoint)
    else:
        exporter = OTLPSpanExporter(endpoint=args.endpoint, insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("causes-service")
    error_type = type(args.raise_type, (ServiceError,), {"__module__": args.name})

    def call_downstream() -> None:
        if args.fail:
            raise TimeoutError("statement timed out after 2.0 s")
        if not args.downstream:
            return
        with tracer.start_as_current_span(
            f"GET {args.downstream}", kind=SpanKind.CLIENT, record_exception=False
        ) as span:
            headers: dict[str, str] = {}
            propagate.inject(headers)
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(args.downstream, headers=headers), timeout=10
                ) as response:
                    response.read()
            except urllib.error.HTTPError:
                span.set_status(Status(StatusCode.ERROR, "downstream failed"))
                raise

    if args.sdk == "faultlens":
        import faultlens

        @faultlens.capture
        def work() -> None:
            try:
                call_downstream()
            except urllib.error.HTTPError as exc:
                raise error_type(f"{args.name}: downstream answered {exc.code}") from exc

    else:
        work = call_downstream

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            context = propagate.extract({key.lower(): value for key, value in self.headers.items()})
            status = 200
            try:
                # Plain OpenTelemetry records the escaping exception on the server span;
                # faultlens recorded it already (the SDK would record it a second time).
                with tracer.start_as_current_span(
                    "GET /work",
                    context=context,
                    kind=SpanKind.SERVER,
                    record_exception=args.sdk == "plain",
                ):
                    work()
            except Exception:
                status = 504 if args.fail else 502
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *values: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening on {server.server_address[1]}", flush=True)
    stop.wait()
    server.shutdown()
    provider.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
