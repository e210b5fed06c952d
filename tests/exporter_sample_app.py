"""A small program for the exporter's end-to-end test, run under ``opentelemetry-instrument``.

It writes five spans through the global tracer provider the OpenTelemetry
configurator set up: two carry failures (one handled, recorded with
``faultlens.record_failure``; one escaping a ``@faultlens.capture`` function),
three do not (a plain span, one with an ordinary event, one whose status is
ERROR without an ``exception`` event).
"""

from __future__ import annotations

import contextlib

import faultlens
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

tracer = trace.get_tracer("exporter-sample")


@faultlens.capture
def charge(amount: int) -> None:
    raise TimeoutError(f"payment provider timed out after {amount}s")


def main() -> None:
    with tracer.start_as_current_span("healthy"):
        pass
    with tracer.start_as_current_span("cache-lookup") as span:
        span.add_event("cache.miss", {"key": "order:17"})
    with tracer.start_as_current_span("error-status-only") as span:
        span.set_status(Status(StatusCode.ERROR, "upstream said 503"))
    with tracer.start_as_current_span("handled"):
        try:
            {}["tax_region"]
        except KeyError as exc:
            faultlens.record_failure(exc)
    # charge's failure escapes it (recorded by @capture on the way out), then is dropped here.
    with tracer.start_as_current_span("escaped"), contextlib.suppress(TimeoutError):
        charge(30)


if __name__ == "__main__":
    main()
