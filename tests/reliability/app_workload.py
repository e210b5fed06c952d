"""An instrumented program for the app-side scenario, run as its own process.

``python tests/reliability/app_workload.py --spans N [--otlp HOST:PORT] [--faultlens HOST:PORT]``

Sets up the OpenTelemetry SDK with a ``BatchSpanProcessor`` per exporter — the
OTLP exporter to ``--otlp`` and faultlens' exporter to ``--faultlens`` (none
given: no exporter at all) — wires faultlens into it, and runs a request loop:
``N`` spans with a ``--payload`` byte attribute, one in ten failing (captured and
re-raised by ``@faultlens.capture`` and handled by the caller), one in ten
recording a handled failure, one in twenty logging an exception. It prints one
JSON line: the loop's wall time, the time ``shutdown`` took, the peak RSS,
and how many exceptions reached the caller that it did not raise itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import faultlens
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


class OrderDeclined(Exception):
    pass


@faultlens.capture
def charge(order: int) -> int:
    if order % 10 == 3:
        raise OrderDeclined(f"card declined for order {order}")
    return order * 2


def _vm_hwm_kib() -> int:
    """Peak RSS of this process (``VmHWM``; reset by ``exec``, unlike ``ru_maxrss``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise LookupError("VmHWM")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, required=True)
    parser.add_argument("--otlp")
    parser.add_argument("--faultlens")
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--payload", type=int, default=1024, help="bytes of attribute per span")
    parser.add_argument(
        "--skip-shutdown", action="store_true", help="leave at once, without flushing (os._exit)"
    )
    args = parser.parse_args()

    provider = TracerProvider(resource=Resource.create({"service.name": "app-side"}))
    if args.otlp:
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=args.otlp, insecure=True, timeout=args.timeout)
            )
        )
    if args.faultlens:
        from faultlens_collector.exporter import FaultlensSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(FaultlensSpanExporter(args.faultlens, timeout=args.timeout))
        )
    faultlens.configure(tracer_provider=provider)
    faultlens.install()
    tracer = provider.get_tracer("app")
    log = logging.getLogger("app")
    log.propagate = False
    log.addHandler(logging.NullHandler())

    payload = "x" * args.payload
    unexpected = 0
    declined = 0
    started = time.perf_counter()
    for order in range(args.spans):
        try:
            with tracer.start_as_current_span("handle", attributes={"payload": payload}):
                try:
                    charge(order)
                except OrderDeclined:
                    declined += 1
                if order % 10 == 5:
                    faultlens.record_failure(TimeoutError("inventory timed out"), handled=True)
                if order % 20 == 7:
                    try:
                        {}["sku"]
                    except KeyError:
                        log.exception("lookup failed")
        except Exception:  # anything faultlens or the SDK let through
            unexpected += 1
    loop = time.perf_counter() - started
    started = time.perf_counter()
    if not args.skip_shutdown:
        provider.shutdown()
    shutdown = time.perf_counter() - started
    peak_kib = _vm_hwm_kib()
    print(
        json.dumps(
            {
                "loop_seconds": loop,
                "shutdown_seconds": shutdown,
                "peak_rss_mib": peak_kib / 1024,
                "unexpected": unexpected,
                "declined": declined,
            }
        ),
        flush=True,
    )
    if args.skip_shutdown:
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
