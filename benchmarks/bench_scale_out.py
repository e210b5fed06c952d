"""Ingest on a PostgreSQL store against SQLite, one processor against two, and what the
database does per acknowledged request — all measured in one run.

The load is ``bench_processor``'s: 1,000-span requests of instrumented-HTTP-server
spans, 10% of them carrying a failure (50 fingerprints), sent by client threads. A
PostgreSQL cluster of its own is started in a temporary directory (as in the tests;
``fsync`` on, the server's defaults otherwise), on this same machine: its CPU is
shared with the processors and the clients, as on a one-box deployment.

1. **One processor, PostgreSQL vs SQLite** (goal: at least 0.7x): ``faultlens serve``
   with the default SQLite file, and with ``--store postgresql://…`` (commits wait for
   the WAL flush: ``synchronous_commit = on``, the default), interleaved rounds, best
   of each. The same with ``synchronous_commit = off`` is shown for the share of the
   flush. Beside spans/s: the processor's and PostgreSQL's CPU per request.
2. **Two processors vs one** on the same database, the clients split between them.
3. **Per acknowledged request**, from ``pg_stat_database`` and ``pg_stat_wal``:
   transactions committed, rows inserted + updated + deleted, WAL bytes.

Run: ``.venv/bin/python benchmarks/bench_scale_out.py [--requests N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _harness import verdict
from bench_processor import FAULTLENS, Server, build_request, send

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.postgres_support import PostgresCluster, find_bindir


def postgres_cpu(cluster: PostgresCluster) -> float:
    """CPU seconds used so far by the cluster's processes (the postmaster's children)."""
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid or int(entry.name) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def database_counters(cluster: PostgresCluster, database: str) -> dict[str, float]:
    time.sleep(1.2)  # backends flush their statistics at most once a second
    row = cluster.psql(
        "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted, "
        f"(SELECT wal_bytes FROM pg_stat_wal) FROM pg_stat_database WHERE datname = '{database}'"
    ).split("|")
    return {"commits": float(row[0]), "rows": float(row[1]), "wal": float(row[2])}


def run_split(servers: list[Server], bodies: list[bytes], threads: int) -> float:
    """Send every body once, the bodies and threads split evenly among ``servers``;
    seconds."""
    elapsed: list[float] = []
    workers = [
        threading.Thread(
            target=lambda s=server, i=index: elapsed.append(
                send(s.address, bodies[i :: len(servers)], max(1, threads // len(servers)))
            )
        )
        for index, server in enumerate(servers)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if find_bindir() is None:
        print("PostgreSQL is not installed (apt-get install postgresql): nothing to measure")
        return 1
    rng = random.Random(7)
    fingerprints = [f"{rng.getrandbits(64):016x}" for _ in range(50)]
    bodies = [build_request(rng, 1000, 0.10, fingerprints) for _ in range(args.requests)]
    spans = 1000 * args.requests
    print(
        f"ingest: {args.requests} requests x 1,000 spans (10% failing, 50 fingerprints), "
        f"{args.threads} client threads, best of {args.rounds} interleaved rounds"
    )
    cluster = PostgresCluster(find_bindir())  # type: ignore[arg-type]
    cluster.init()
    cluster.start(fsync=True)
    cluster.create_role()
    url = cluster.create_database("bench")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        serve = [FAULTLENS, "serve", "--listen", "127.0.0.1:0", "--store"]
        sqlite = Server([*serve, f"{tmp}/bench.db"])
        postgres = Server([*serve, url])
        os.environ["PGOPTIONS"] = "-c synchronous_commit=off"
        postgres_async = Server([*serve, url])
        del os.environ["PGOPTIONS"]
        second = Server([*serve, url])
        singles: dict[str, Server] = {
            "sqlite": sqlite,
            "postgresql": postgres,
            "postgresql, synchronous_commit=off": postgres_async,
        }
        best = {name: float("inf") for name in [*singles, "two processors"]}
        cpu: dict[str, float] = {name: float("inf") for name in singles}
        pg_cpu: dict[str, float] = {name: float("inf") for name in best}
        per_request: dict[str, Any] = {}
        try:
            for server in singles.values():  # warm up: groups exist, caches filled
                send(server.address, bodies[:20], args.threads)
            for _ in range(args.rounds):
                for name, server in singles.items():
                    before, pg_before = server.cpu_seconds(), postgres_cpu(cluster)
                    counters = database_counters(cluster, "bench")
                    best[name] = min(best[name], send(server.address, bodies, args.threads))
                    after, pg_after = server.cpu_seconds(), postgres_cpu(cluster)
                    if before is not None and after is not None:
                        cpu[name] = min(cpu[name], (after - before) / args.requests)
                    if name != "sqlite":
                        pg_cpu[name] = min(pg_cpu[name], (pg_after - pg_before) / args.requests)
                        later = database_counters(cluster, "bench")
                        per_request[name] = {
                            key: (later[key] - counters[key]) / args.requests for key in later
                        }
                pg_before = postgres_cpu(cluster)
                best["two processors"] = min(
                    best["two processors"], run_split([postgres, second], bodies, args.threads)
                )
                pg_cpu["two processors"] = min(
                    pg_cpu["two processors"], (postgres_cpu(cluster) - pg_before) / args.requests
                )
        finally:
            for server in [*singles.values(), second]:
                server.stop()
            cluster.destroy()
    rates = {name: spans / seconds for name, seconds in best.items()}
    print("\n1. one processor (and 2. two processors on one database):")
    for name, rate in rates.items():
        used = []
        if cpu.get(name, float("inf")) < float("inf"):
            used.append(f"processor CPU {cpu[name] * 1000:.2f} ms/request")
        if pg_cpu.get(name, float("inf")) < float("inf"):
            used.append(f"PostgreSQL CPU {pg_cpu[name] * 1000:.2f} ms/request")
        print(
            f"  {name:<36} {rate:10,.0f} spans/s ({rate / 10:8,.0f} failures/s)  {', '.join(used)}"
        )
    print("\n3. the database per acknowledged request (1,000 spans, ~100 failures, <=50 groups):")
    for name, figures in per_request.items():
        print(
            f"  {name:<36} {figures['commits']:.2f} commits, {figures['rows']:.1f} rows written, "
            f"{figures['wal'] / 1024:.1f} KiB of WAL"
        )
    ok &= verdict(
        "PostgreSQL / SQLite, one processor",
        rates["postgresql"] / rates["sqlite"],
        0.7,
        at_most=False,
    )
    print(
        f"two processors / one, same database: {rates['two processors'] / rates['postgresql']:.2f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
