"""Processor ingest throughput and memory, as ratios measured in one run.

1. **Ingest**: spans/s of ``faultlens serve`` (dedup and SQLite store on) against a
   no-op OTLP/gRPC receiver (the ``opentelemetry-proto`` servicer that parses each request
   and answers empty), both in their own process, fed by the same client process with the
   same pre-serialized data: 1,000-span requests, 10% of spans carrying a failure event
   (a fixed set of 50 fingerprints, as a real service has few distinct defects).
   Target: at least 0.75x the no-op receiver. The absolute figure is printed too.
2. **Memory**: 1,000,000 distinct fingerprints sent to ``faultlens serve``; its peak RSS
   (VmHWM) must stay under 300 MB.

Run: ``.venv/bin/python benchmarks/bench_processor.py [--skip-memory] [--groups N]``.
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


def build_request(
    rng: random.Random, spans: int, failure_ratio: float, fingerprints: list[str]
) -> bytes:
    items = []
    for _ in range(spans):
        span = Span(
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
            name="GET /orders/{id}",
            start_time_unix_nano=1_700_000_000_000_000_000,
            end_time_unix_nano=1_700_000_000_001_000_000,
            attributes=[_kv("http.request.method", "GET"), _kv("http.response.status_code", 200)],
        )
        if rng.random() < failure_ratio:
            span.events.add(
                name="exception",
                time_unix_nano=1_700_000_000_000_500_000,
                attributes=[
                    _kv("exception.type", "app.errors.PaymentDeclined"),
                    _kv("exception.message", "card declined for order 1234"),
                    _kv("exception.stacktrace", "Traceback (most recent call last):\n" * 5),
                    _kv("failure.fingerprint", rng.choice(fingerprints)),
                    _kv("failure.category", "dependency"),
                    _kv("failure.severity", "medium"),
                    _kv("failure.handled", True),
                    _kv("failure.count", 1),
                ],
            )
        items.append(span)
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_kv("service.name", "orders")]),
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


def ingest(rounds: int, requests: int, threads: int) -> bool:
    rng = random.Random(7)
    fingerprints = [f"{rng.getrandbits(64):016x}" for _ in range(50)]
    bodies = [build_request(rng, 1000, 0.10, fingerprints) for _ in range(requests)]
    spans = 1000 * requests
    print(f"\ningest: {requests} requests x 1,000 spans (10% failing), {threads} client threads")
    with tempfile.TemporaryDirectory() as tmp:
        noop = Server([sys.executable, "-c", NOOP_RECEIVER])
        processor = Server(
            [FAULTLENS, "serve", "--listen", "127.0.0.1:0", "--store", f"{tmp}/bench.db"]
        )
        best = {"noop": float("inf"), "faultlens": float("inf")}
        try:
            for _ in range(rounds):
                best["noop"] = min(best["noop"], send(noop.address, bodies, threads))
                best["faultlens"] = min(best["faultlens"], send(processor.address, bodies, threads))
        finally:
            noop.stop()
            processor.stop()
    rates = {name: spans / seconds for name, seconds in best.items()}
    for name, rate in rates.items():
        print(
            f"  {name:<12} {rate:12,.0f} spans/s  ({rate / 10:10,.0f} failures/s for faultlens)"
            if name == "faultlens"
            else f"  {name:<12} {rate:12,.0f} spans/s"
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
    args = parser.parse_args()
    ok = ingest(args.rounds, args.requests, args.threads)
    if not args.skip_memory:
        ok = memory(args.groups) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
