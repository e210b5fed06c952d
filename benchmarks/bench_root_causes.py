"""Root causes across services: accuracy, ingest cost, memory — measured in one run.

1. **Accuracy** — traces from ``cascade_traces.py`` (ten services, fan-out, retries,
   timeouts surfacing upstream as other exception types, wrapped exceptions, 10% noise,
   intermediate spans missing, spans batched per service and arriving out of order,
   Python and JavaScript stack formats) are replayed in real time over OTLP/gRPC to a
   real processor (the ``Processor`` that ``faultlens serve`` runs, in this process so
   its per-trace decisions can be scored); then the top-1 root accuracy per trace and
   the precision and recall of the group links it stored are computed
   (``rootcause_eval.py``). Targets: top-1 >= 0.95, link precision >= 0.95, recall >= 0.9.
2. **Ingest** — the same kind of traces (every span sent, so the spans on the failures'
   call paths are read too) and, separately, the spans of ``bench_processor.py`` (one
   trace per span), sent as fast as four client threads can to ``faultlens serve`` and
   to ``faultlens serve --no-root-causes``, each its own process, rounds interleaved;
   spans/s and server CPU per request. Target: with linking >= 0.9x without.
3. **Memory per open trace** — the window's bytes per held trace (tracemalloc) for the
   generated traces as ingest hands them over.

Run: ``.venv/bin/python benchmarks/bench_root_causes.py [--traces N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import cascade_traces
import grpc
from _harness import verdict
from bench_processor import FAULTLENS, Server, build_request, send
from faultlens_collector.causes.links import changes
from faultlens_collector.causes.listener import RootCauseSettings
from faultlens_collector.causes.spans import SpanTrees
from faultlens_collector.causes.window import Decision, TraceWindow, WindowSettings
from faultlens_collector.ingest.extract import extract_spans
from faultlens_collector.processor.server import Processor, ProcessorSettings
from rootcause_eval import score

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def kinds() -> list[cascade_traces.Kind]:
    found: list[cascade_traces.Kind] = []
    for value in vars(cascade_traces).values():
        if isinstance(value, cascade_traces.Kind):
            found.append(value)
        elif isinstance(value, dict):
            found += [item for item in value.values() if isinstance(item, cascade_traces.Kind)]
    return found


def accuracy(traces: int, settle: float) -> bool:
    workload = cascade_traces.generate(traces)
    print(
        f"\naccuracy: {traces:,} traces, {workload.spans:,} spans sent, {workload.failures:,} "
        f"failures ({workload.noise_share:.1%} noise) in {len(workload.requests)} requests, "
        f"replayed in real time"
    )
    roots: dict[bytes, str] = {}
    decisions: list[Decision] = []

    def record(batch: Sequence[Decision]) -> None:
        decisions.extend(batch)
        for decision in batch:
            roots[decision.trace_id] = decision.verdict.root

    with tempfile.TemporaryDirectory() as tmp:
        processor = Processor(
            ProcessorSettings(
                store_path=Path(tmp) / "links.db",
                listen="127.0.0.1:0",
                root_causes=RootCauseSettings(WindowSettings(settle_seconds=settle)),
            )
        )
        processor.start()
        try:
            assert processor.root_causes is not None
            processor.root_causes.on_decision = record
            channel = grpc.insecure_channel(processor.address)
            call = channel.unary_unary(TRACE_EXPORT)
            started = time.monotonic()
            for when, body in workload.requests:
                delay = started + when / 1e9 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                call(body, timeout=30)
            channel.close()
            time.sleep(settle + 1.0)
        finally:
            processor.stop()
        links = {
            (link.cause, link.symptom): link.occurrences
            for link in _stored_links(Path(tmp) / "links.db")
        }
    result = score(workload.truths, roots, links, kinds())
    for line in result.lines():
        print(f"  {line}")
    if result.false_links:
        print(f"  false links: {result.false_links[:5]}")
    if result.missed_links:
        print(f"  missed links: {result.missed_links[:5]}")
    counted = {key: change.occurrences for key, change in changes(decisions).items()}
    assert counted == {key: value for key, value in links.items() if value}, "store != decisions"
    ok = at_least("top-1 root accuracy", result.top1, 0.95)
    ok = at_least("link precision", result.link_precision, 0.95) and ok
    return at_least("link recall", result.link_recall, 0.9) and ok


def at_least(label: str, value: float, target: float) -> bool:
    """Print whether a score meets its target."""
    ok = value >= target
    print(f"  {label}: {value:.3f} (target >= {target}) {'OK' if ok else 'MISSED'}")
    return ok


def _stored_links(path: Path) -> list:
    from faultlens_collector.store import open_database

    database = open_database(path)
    try:
        return database.link_store().all_links()
    finally:
        database.close()


def ingest(rounds: list[list[bytes]], spans: int, threads: int, label: str) -> bool:
    """Spans/s and server CPU per request with and without linking, rounds interleaved;
    each round sends traces neither server saw before (a trace sent twice is linked once:
    re-sending would measure duplicates)."""
    requests = len(rounds[0])
    print(
        f"\ningest, {label}: {len(rounds)} rounds of {requests} requests, {spans:,} spans each, "
        f"{threads} client threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            "with linking": Server(
                [FAULTLENS, "serve", "--listen", "127.0.0.1:0", "--store", f"{tmp}/on.db"]
            ),
            "without": Server(
                [
                    *(FAULTLENS, "serve", "--listen", "127.0.0.1:0"),
                    *("--store", f"{tmp}/off.db", "--no-root-causes"),
                ]
            ),
        }
        best = {name: float("inf") for name in servers}
        cpu = {name: float("inf") for name in servers}
        try:
            for bodies in rounds:
                for name, server in servers.items():
                    before = server.cpu_seconds()
                    elapsed = send(server.address, bodies, threads)
                    time.sleep(0.6)  # let the linking thread decide what settled (CPU counted)
                    after = server.cpu_seconds()
                    best[name] = min(best[name], elapsed)
                    if before is not None and after is not None:
                        cpu[name] = min(cpu[name], (after - before) / requests)
        finally:
            for server in servers.values():
                server.stop()
    for name in servers:
        used = f"  server CPU {cpu[name] * 1000:.2f} ms/request" if cpu[name] < 1e9 else ""
        print(f"  {name:<14} {spans / best[name]:12,.0f} spans/s{used}")
    ok = verdict(
        "spans/s with linking / without", best["without"] / best["with linking"], 0.9, at_most=False
    )
    if cpu["with linking"] < 1e9:
        print(
            f"  server CPU per request, without / with: {cpu['without'] / cpu['with linking']:.3f}"
        )
    return ok


def memory(traces: int) -> None:
    """Bytes per open trace: what the window keeps alive (its records, the span facts,
    the failures), measured after the requests' other garbage is gone — for the cascade
    traces of the generator and for traces with one failure each."""
    rng = random.Random(3)
    fingerprints = [f"{rng.getrandbits(64):016x}" for _ in range(50)]
    shapes = {
        "cascades (generated traces)": [
            body for _, body in cascade_traces.generate(traces, failing_only=0.0).requests
        ],
        "one failure per trace (bench_processor)": [
            build_request(rng, 1000, 0.10, fingerprints) for _ in range(50)
        ],
    }
    limit = WindowSettings().max_traces
    print("\nmemory per open trace:")
    for label, bodies in shapes.items():
        for body in bodies[:10]:  # warm the bounded caches (templates, fingerprints)
            extract_spans(body, trees=SpanTrees({}))
        window = TraceWindow(WindowSettings(max_traces=10**6))
        trees = SpanTrees(window.wanted())
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for body in bodies:
            window.add_many(extract_spans(body, trees=trees).spans)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        per_trace = held / len(window)
        print(
            f"  {label}: {len(window):,} traces, {window.spans:,} spans held: "
            f"{per_trace:,.0f} bytes per trace; at --max-traces {limit:,}: "
            f"{per_trace * limit / 1e6:.0f} MB"
        )


def offline(traces: int, label: str, *, tolerance_ms: float = 1.0, **shape: float) -> None:
    """The same workload through ingest's extraction and the window, without gRPC, with
    a simulated clock: how the scores move with the shape of the traffic."""
    workload = cascade_traces.generate(traces, **shape)  # type: ignore[arg-type]
    clock = [0.0]
    window = TraceWindow(WindowSettings(skew_nanos=int(tolerance_ms * 1e6)), clock=lambda: clock[0])
    trees = SpanTrees(window.wanted())
    decisions: list[Decision] = []
    for when, body in workload.requests:
        clock[0] = when / 1e9
        window.add_many(extract_spans(body, trees=trees).spans)
        decisions += window.collect()
    clock[0] += 100
    decisions += window.collect()
    roots = {decision.trace_id: decision.verdict.root for decision in decisions}
    links = {key: change.occurrences for key, change in changes(decisions).items()}
    result = score(workload.truths, roots, links, kinds())
    print(
        f"  {label:<52} top-1 {result.top1:.3f}  links P {result.link_precision:.3f} "
        f"R {result.link_recall:.3f}  weighted P {result.weighted_precision:.3f} "
        f"R {result.weighted_recall:.3f}"
    )


def sensitivity(traces: int) -> None:
    print(
        f"\nsensitivity (offline, {traces:,} traces each; defaults: half the services send "
        "only failing spans, clocks within 0.5 ms, 10% noise, flushes every 0.1-1.5 s):"
    )
    offline(traces, "defaults")
    offline(traces, "every span sent", failing_only=0.0)
    offline(traces, "only failing spans (the faultlens exporter)", failing_only=1.0)
    offline(traces, "20% noise", noise=0.3)
    offline(traces, "flushes every 0.1-6 s (late arrivals)", flush_ms=(100.0, 6000.0))
    offline(traces, "clocks 1.5 ms apart", skew_ms=1.5)
    offline(traces, "clocks 5 ms apart", skew_ms=5.0)
    offline(traces, "clocks 5 ms apart, --clock-skew-ms 5", skew_ms=5.0, tolerance_ms=5.0)
    offline(traces, "clocks 5 ms apart, failing spans only", skew_ms=5.0, failing_only=1.0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=3000)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="per round, bench_processor's")
    parser.add_argument("--ingest-traces", type=int, default=10_000, help="per round, generated")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--sensitivity", action="store_true", help="also score other shapes")
    args = parser.parse_args()
    ok = True
    if not args.skip_accuracy:
        ok = accuracy(args.traces, args.settle) and ok
    if not args.skip_ingest:
        generated = [
            cascade_traces.generate(
                args.ingest_traces, seed=100 + number, rate=10_000, failing_only=0.0,
                flush_ms=(50, 50),
            )
            for number in range(args.rounds)
        ]  # fmt: skip
        ok = (
            ingest(
                [[body for _, body in workload.requests] for workload in generated],
                generated[0].spans,
                args.threads,
                "generated traces (every span sent)",
            )
            and ok
        )
        rng = random.Random(7)
        fingerprints = [f"{rng.getrandbits(64):016x}" for _ in range(50)]
        plain = [
            [build_request(rng, 1000, 0.10, fingerprints) for _ in range(args.requests)]
            for _ in range(args.rounds)
        ]
        ok = ingest(plain, 1000 * args.requests, args.threads, "bench_processor spans") and ok
    memory(5000)
    if args.sensitivity:
        sensitivity(args.traces)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
