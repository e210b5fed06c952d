"""What the action engine costs the processor, as ratios measured in one run.

1. **Ingest with actions**: spans/s of ``faultlens serve`` with a ``--config`` against the
   same processor without one, fed the same pre-serialized requests (bench_processor's
   instrumented-server spans: 1,000-span requests, 10% failing, 50 fingerprints):

   * ``rules``: 50 rules that do not match, a windowed halt rule on ``service.name``
     (the engine per group per commit, nothing extra read from requests);
   * ``consecutive``: a consecutive halt rule on ``service.name`` — the processor also
     reads the successful spans' keys (``on_success``);
   * ``attributes``: a rule on a span attribute and a hook — failures carry their
     span's attributes.

   Target: ``rules`` at least 0.9x the processor without a config.
2. **Bulk triage**: seconds for Dismiss (every group), Categorize (half of them, by
   filter) and Resolve (half of them, by 5,000 fingerprints) on 10,000 and 100,000 groups.

Run: ``.venv/bin/python benchmarks/bench_processor_actions.py [--rounds N] [--requests N]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from _harness import verdict
from bench_processor import FAULTLENS, Server, build_request, send

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector_exporter"))

RULES = "\n".join(
    f'[[rules]]\nname = "r{i}"\nexception_type = "never.Raised{i}"\nalert = true\n'
    for i in range(50)
)
CONFIGS = {
    "rules": RULES
    + '[[halts]]\nname = "burst"\nkey = ["service.name"]\ncount = 1000000\nwindow = "1m"\n',
    "consecutive": '[[halts]]\nname = "down"\nkey = ["service.name"]\nconsecutive = 1000000\n',
    "attributes": (
        f'[hooks.noop]\ncommand = ["{sys.executable}", "-c", "pass"]\n'
        '[[rules]]\nname = "eu"\nattributes = { "server.address" = "eu.*" }\nfix = ["noop"]\n'
    ),
}


def ingest(rounds: int, requests: int, threads: int) -> bool:
    rng = random.Random(7)
    fingerprints = [f"{rng.getrandbits(64):016x}" for _ in range(50)]
    bodies = [build_request(rng, 1000, 0.10, fingerprints) for _ in range(requests)]
    spans = 1000 * requests
    print(
        f"\ningest: {requests} requests x 1,000 instrumented-server spans (10% failing), "
        f"{threads} client threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        servers = {"no config": Server(_serve(tmp, "plain"))}
        for name, text in CONFIGS.items():
            path = Path(tmp) / f"{name}.toml"
            path.write_text(text)
            servers[name] = Server([*_serve(tmp, name), "--config", str(path)])
        best = dict.fromkeys(servers, float("inf"))
        try:
            for _ in range(rounds):
                for name, server in servers.items():
                    best[name] = min(best[name], send(server.address, bodies, threads))
        finally:
            for server in servers.values():
                server.stop()
    base = spans / best["no config"]
    for name, seconds in best.items():
        rate = spans / seconds
        print(f"  {name:<12} {rate:12,.0f} spans/s   {rate / base:6.3f}x")
    return verdict("rules / no config", best["no config"] / best["rules"], 0.9, at_most=False)


def _serve(tmp: str, name: str) -> list[str]:
    return [FAULTLENS, "serve", "--listen", "127.0.0.1:0", "--store", f"{tmp}/{name}.db"]


def bulk(groups: int) -> None:
    from faultlens_collector._proto.faultlens.v1 import control_pb2
    from faultlens_collector.control.client import ControlClient
    from faultlens_collector.groups.model import Occurrence
    from faultlens_collector.store import open_database

    with tempfile.TemporaryDirectory() as tmp:
        database = open_database(f"{tmp}/bulk.db")
        store = database.group_store()
        store.apply(
            [
                Occurrence(
                    f"{i:016x}",
                    "E",
                    "m",
                    "",
                    "io" if i % 2 else "value",
                    "medium",
                    None,
                    1,
                    i + 1,
                    "svc",
                    "span",
                    "",
                    "",
                )
                for i in range(groups)
            ]
        )
        database.close()
        server = Server(
            [FAULTLENS, "serve", "--listen", "127.0.0.1:0", "--store", f"{tmp}/bulk.db"]
        )
        try:
            with ControlClient(server.address, timeout=600) as client:
                everything = control_pb2.GroupSelection(all=True)
                half = control_pb2.GroupSelection(filter=control_pb2.GroupFilter(categories=["io"]))
                named = control_pb2.GroupSelection(
                    fingerprints=[f"{i:016x}" for i in range(0, groups, 2)]
                )
                calls = {
                    "dismiss (all)": (
                        "Dismiss",
                        control_pb2.DismissRequest(selection=everything, reason="bench"),
                    ),
                    "categorize (filter, half)": (
                        "Categorize",
                        control_pb2.CategorizeRequest(
                            selection=half, add_tags=["t"], severity="low"
                        ),
                    ),
                    "resolve (fingerprints, half)": (
                        "Resolve",
                        control_pb2.SetStatusRequest(selection=named),
                    ),
                }
                print(f"\nbulk triage on {groups:,} groups")
                for label, (rpc, request) in calls.items():
                    started = time.perf_counter()
                    reply = client.call(rpc, request)
                    elapsed = time.perf_counter() - started
                    print(f"  {label:<30} {reply.matched:8,} groups  {elapsed:7.3f} s")
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--skip-bulk", action="store_true")
    args = parser.parse_args()
    ok = ingest(args.rounds, args.requests, args.threads)
    if not args.skip_bulk:
        for groups in (10_000, 100_000):
            bulk(groups)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
