"""Processor ingest throughput and memory, as ratios measured in one run.

1. **Ingest**: spans/s of ``faultlens serve`` (dedup and SQLite store on) against a
   no-op OTLP/gRPC receiver (the ``opentelemetry-proto`` servicer that parses each request
   and answers empty), both in their own process, fed by the same client process with the
   same pre-serialized data: 1,000-span requests, 10% of spans carrying a failure event
   (a fixed set of 50 fingerprints, as a real service has few distinct defects). The spans
   are what an instrumented HTTP server sends (13 attributes, a typical resource).
   Target: at least 0.75x the no-op receiver. The absolute figure is printed too, and the
   same measurement with minimal spans (2 attributes), where parsing costs the no-op least,
   and with the failures the plain OpenTelemetry Python SDK sends (no ``failure.*``
   attributes, ``exception.escaped`` as the string ``"False"``, half of them on spans that
   ended with status ERROR, so the processor derives "escaped" from the span status).
2. **Memory**: 1,000,000 distinct fingerprints sent to ``faultlens serve``; its peak RSS
   (VmHWM) must stay under 300 MB.

Run: ``.venv/bin/python benchmarks/bench_processor.py [--skip-memory] [--groups N]
[--baseline PATH/TO/faultlens]``. ``--baseline`` adds another build's ``faultlens serve``
(say, of the main branch in its own virtual environment) to the same rounds and prints
this build's spans/s and CPU per request as ratios of it: a before/after in one run.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from _harness import verdict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
FAULTLENS = str(Path(sys.executable).with_name("faultlens"))
NOOP_RECEIVER = r"""
import sys
from concurrent import futures
import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

class Noop(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        return trace_service_pb2.ExportTraceServiceResponse()

server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                     options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Noop(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"listening on 127.0.0.1:{port}, noop", file=sys.stderr, flush=True)
server.wait_for_termination()
"""


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


#: What an HTTP server span from the contrib instrumentations carries (semantic conventions 1.2x).
SERVER_SPAN_ATTRIBUTES = {
    "http.request.method": "GET",
    "url.scheme": "https",
    "url.path": "/orders/81723",
    "url.query": "expand=items&currency=EUR",
    "http.route": "/orders/{id}",
    "http.response.status_code": 200,
    "server.address": "orders.internal.example.com",
    "server.port": 8443,
    "client.address": "10.12.7.31",
    "network.protocol.version": "1.1",
    "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
    "http.request.body.size": 0,
    "http.response.body.size": 1843,
}
RESOURCE_ATTRIBUTES = {
    "service.name": "orders",
    "service.version": "2.14.1",
    "deployment.environment.name": "production",
    "host.name": "orders-7c9f8b6d5-xk2lp",
    "process.pid": 1,
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.39.0",
}


def sdk_event(rng: random.Random, fingerprints: list[str], span: Span) -> list[KeyValue]:
    """The attributes of an ``exception`` event from the faultlens SDK."""
    return [
        _kv("exception.type", "app.errors.PaymentDeclined"),
        _kv("exception.message", "card declined for order 1234"),
        _kv("exception.stacktrace", "Traceback (most recent call last):\n" * 5),
        _kv("failure.fingerprint", rng.choice(fingerprints)),
        _kv("failure.category", "dependency"),
        _kv("failure.severity", "medium"),
        _kv("failure.handled", True),
        _kv("failure.count", 1),
    ]


def plain_event(rng: random.Random, fingerprints: list[str], span: Span) -> list[KeyValue]:
    """The attributes of an ``exception`` event from the plain OpenTelemetry Python SDK (one
    of 50 stack traces); half the spans end as ``start_as_current_span`` ends one the
    exception left: status ERROR, ``Type: message``."""
    defect = fingerprints.index(rng.choice(fingerprints))
    if rng.random() < 0.5:
        span.status.code = span.status.STATUS_CODE_ERROR
        span.status.message = "PaymentDeclined: card declined for order 1234"
    return [
        _kv("exception.type", "app.errors.PaymentDeclined"),
        _kv("exception.message", "card declined for order 1234"),
        _kv(
            "exception.stacktrace",
            "Traceback (most recent call last):\n"
            f'  File "/srv/app/orders/service.py", line 42, in charge_{defect}\n'
            "    gateway.charge(order)\n"
            "app.errors.PaymentDeclined: card declined for order 1234\n",
        ),
        _kv("exception.escaped", "False"),
    ]


def build_request(
    rng: random.Random,
    spans: int,
    failure_ratio: float,
    fingerprints: list[str],
    *,
    realistic: bool = True,
    plain: bool = False,
) -> bytes:
    """A serialized request of ``spans`` spans, ``failure_ratio`` of them with a failure event.

    ``realistic`` spans carry what an instrumented HTTP server's spans carry (13 attributes,
    kind, parent, status); otherwise two attributes only (the cheapest spans to parse).
    ``plain`` failure events are the OpenTelemetry Python SDK's (see the module docstring);
    otherwise the faultlens SDK's.
    """
    attributes = (
        [_kv(key, value) for key, value in SERVER_SPAN_ATTRIBUTES.items()]
        if realistic
        else [_kv("http.request.method", "GET"), _kv("http.response.status_code", 200)]
    )
    resource = RESOURCE_ATTRIBUTES if realistic else {"service.name": "orders"}
    items = []
    for _ in range(spans):
        span = Span(
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
            parent_span_id=rng.randbytes(8) if realistic else b"",
            name="GET /orders/{id}",
            kind=Span.SPAN_KIND_SERVER if realistic else Span.SPAN_KIND_UNSPECIFIED,
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_000_001_000_000,
            attributes=attributes,
        )
        if rng.random() < failure_ratio:
            span.events.add(
                name="exception",
                time_unix_nano=1_700_000_000_000_500_000,
                attributes=(plain_event if plain else sdk_event)(rng, fingerprints, span),
            )
        items.append(span)
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_kv(k, v) for k, v in resource.items()]),
                scope_spans=[ScopeSpans(spans=items)],
            )
        ]
    )
    return request.SerializeToString()


class Server:
    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(
            argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        match = re.search(r"listening on (\S+?),", line)
        if not match:
            raise SystemExit(f"server did not start: {line}")
        self.address = match.group(1)
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # type: ignore[union-attr]

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (None off Linux)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def send(address: str, bodies: list[bytes], threads: int) -> float:
    """Send every body once from ``threads`` client threads; returns elapsed seconds."""
    channel = grpc.insecure_channel(
        address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    )
    call = channel.unary_unary(TRACE_EXPORT)
    call(bodies[0], timeout=30)  # connect and warm up
    chunks = [bodies[index::threads] for index in range(threads)]

    def run(chunk: list[bytes]) -> None:
        for body in chunk:
            call(body, timeout=60)

    workers = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    channel.close()
    return elapsed


def ingest(
    rounds: int,
    requests: int,
    threads: int,
    *,
    realistic: bool,
    baseline: str | None = None,
    plain: bool = False,
) -> bool:
    rng = random.Random(7)
    fingerprints = [f"{rng.getrandbits(64):016x}" for _ in range(50)]
    bodies = [
        build_request(rng, 1000, 0.10, fingerprints, realistic=realistic, plain=plain)
        for _ in range(requests)
    ]
    spans = 1000 * requests
    shape = "instrumented HTTP server spans" if realistic else "minimal spans (2 attributes)"
    if plain:
        shape += ", failures from the plain OpenTelemetry SDK"
    print(
        f"\ningest, {shape}: {requests} requests x 1,000 spans (10% failing), "
        f"{threads} client threads, {len(bodies[0]) / 1024:.0f} KiB per request"
    )
    with tempfile.TemporaryDirectory() as tmp:
        noop = Server([sys.executable, "-c", NOOP_RECEIVER])
        processor = Server(
            [FAULTLENS, "serve", "--listen", "127.0.0.1:0", "--store", f"{tmp}/bench.db"]
        )
        servers = {"noop": noop, "faultlens": processor}
        if baseline:
            servers["baseline"] = Server(
                [baseline, "serve", "--listen", "127.0.0.1:0", "--store", f"{tmp}/base.db"]
            )
        best = {name: float("inf") for name in servers}
        cpu = {name: float("inf") for name in servers}  # server CPU seconds per request
        try:
            for _ in range(rounds):
                for name, server in servers.items():
                    before = server.cpu_seconds()
                    best[name] = min(best[name], send(server.address, bodies, threads))
                    after = server.cpu_seconds()
                    if before is not None and after is not None:
                        cpu[name] = min(cpu[name], (after - before) / requests)
        finally:
            for server in servers.values():
                server.stop()
    rates = {name: spans / seconds for name, seconds in best.items()}
    for name, rate in rates.items():
        used = f"server CPU {cpu[name] * 1000:.2f} ms/request" if cpu[name] < float("inf") else ""
        failures = f"({rate / 10:,.0f} failures/s) " if name == "faultlens" else ""
        print(f"  {name:<12} {rate:12,.0f} spans/s  {failures}{used}")
    if cpu["faultlens"] < float("inf"):
        print(f"  server CPU per request, no-op / faultlens: {cpu['noop'] / cpu['faultlens']:.3f}")
    if baseline:
        print(
            f"  this build / baseline: spans/s {rates['faultlens'] / rates['baseline']:.3f}, "
            f"server CPU per request {cpu['faultlens'] / cpu['baseline']:.3f}"
        )
    return verdict(
        "faultlens / no-op receiver", rates["faultlens"] / rates["noop"], 0.75, at_most=False
    )


def memory(groups: int) -> bool:
    print(f"\nmemory: {groups:,} distinct fingerprints")
    with tempfile.TemporaryDirectory() as tmp:
        processor = Server(
            [FAULTLENS, "serve", "--listen", "127.0.0.1:0", "--store", f"{tmp}/mem.db"]
        )
        try:
            per_request = 1000
            rng = random.Random(11)
            counter = iter(range(groups))

            def bodies() -> list[bytes]:
                fingerprints = [f"{next(counter):016x}" for _ in range(per_request)]
                return [build_request(rng, per_request, 1.0, fingerprints)]

            started = time.perf_counter()
            sent = 0
            while sent < groups:
                # One fingerprint per span: the request carries `per_request` new groups
                # (rng.choice over distinct values may repeat a few; count what is stored).
                send(processor.address, bodies(), 1)
                sent += per_request
            elapsed = time.perf_counter() - started
            rss = processor.peak_rss_mb()
            size = os.path.getsize(f"{tmp}/mem.db") / 1e6
        finally:
            processor.stop()
    print(f"  {sent:,} failures in {elapsed:.1f} s ({sent / elapsed:,.0f}/s), store {size:.0f} MB")
    print(f"  peak RSS {rss:.0f} MB")
    return verdict("peak RSS (MB) / 300 MB", rss / 300, 1.0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--groups", type=int, default=1_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--baseline", metavar="FAULTLENS", help="another build's faultlens script")
    args = parser.parse_args()
    # The target applies to realistic spans; minimal spans show the floor of the span walk.
    ok = ingest(args.rounds, args.requests, args.threads, realistic=True, baseline=args.baseline)
    ingest(args.rounds, args.requests, args.threads, realistic=False, baseline=args.baseline)
    ingest(
        args.rounds,
        args.requests,
        args.threads,
        realistic=True,
        baseline=args.baseline,
        plain=True,
    )
    if not args.skip_memory:
        ok = memory(args.groups) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
