"""Capture inside every Python process ``faultlens run`` starts (through :mod:`.bootstrap`).

:func:`start` runs at interpreter start-up when ``FAULTLENS_RUN_ENDPOINT`` is set:

* failures go as OTLP log records (``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN=logs``
  behaviour, for this process only) through a logger provider of faultlens' own to
  the embedded processor of ``faultlens run`` — whatever tracing the program sets
  up, its spans are untouched and every failure reaches the detector once;
* the zero-code instrumentation starts as under ``opentelemetry-instrument``: the
  excepthooks, the asyncio hook, logging capture, and the ``FAULTLENS_INSTRUMENT``
  targets (the project's own modules by default);
* on Python 3.12+, the swallowed-exception detector (:mod:`.swallowed`) watches
  the project's code (``FAULTLENS_RUN_SWALLOWED``: its module prefixes);
* at exit everything recorded is flushed and exported before the process ends.

Nothing here raises into the program: a failure to start is one line on stderr.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Final

ENDPOINT_ENV: Final = "FAULTLENS_RUN_ENDPOINT"
SERVICE_ENV: Final = "FAULTLENS_RUN_SERVICE"
SWALLOWED_ENV: Final = "FAULTLENS_RUN_SWALLOWED"
_started: list[bool] = []


def start() -> None:
    """Start capture in this process (once; nothing without ``FAULTLENS_RUN_ENDPOINT``)."""
    endpoint = os.environ.get(ENDPOINT_ENV)
    if not endpoint or _started:
        return
    _started.append(True)
    try:
        _start(endpoint)
    except Exception as exc:  # never fail the program
        print(f"faultlens run: capture not started in this process: {exc}", file=sys.stderr)


def _start(endpoint: str) -> None:
    import faultlens
    from faultlens.instrumentation import FaultlensInstrumentor
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(
        resource=Resource.create(
            {
                "service.name": os.environ.get(SERVICE_ENV, "faultlens-run"),
                "process.pid": os.getpid(),
            }
        )
    )
    provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True))
    )
    faultlens.configure(logger_provider=provider, signal="logs")

    def finish() -> None:
        faultlens.flush()
        provider.shutdown()

    atexit.register(finish)
    FaultlensInstrumentor().instrument()
    prefixes = [p for p in os.environ.get(SWALLOWED_ENV, "").split(",") if p]
    if prefixes:
        from faultlens_collector.detection import swallowed

        swallowed.start(prefixes)
