"""Paging deep into a big groups list: keyset cursors against the old offsets.

A SQLite store with ``--groups`` (default 100,000) groups is written the way
``bench_console.py`` writes its store (the processor's own store code); then one page
of 50 groups is read at several depths of the list — the first page, the middle, and
the last page — for the sorts the console offers (last seen, count, first seen), over
every group and over the console's default "open" tab, two ways in the same run:

* **offset**: ``list_groups(offset=depth)``, what ``page_token`` was before (the
  database walks and drops ``depth`` rows first);
* **keyset**: ``list_groups(after=<the key of the row before>)``, what ``page_token``
  is now (one range read of the sort's index).

Each figure is the best of interleaved rounds (benchmarks/_harness.py); the ratio is
offset over keyset. With ``--postgres`` the same runs against a PostgreSQL server the
benchmark starts (tests/postgres_support.py), which pages with a scan and a top-N sort
by design (no index on columns every ingest changes).

Run: ``.venv/bin/python benchmarks/bench_paging.py [--groups N] [--postgres]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]

from _harness import compare  # noqa: E402
from bench_console import fill_store  # noqa: E402
from faultlens_collector.groups.store import GroupQuery, GroupStore, group_key  # noqa: E402
from faultlens_collector.store.sqlite.database import SQLiteDatabase  # noqa: E402

PAGE = 50
QUERIES = {
    "all, last seen": GroupQuery(),
    "open tab, last seen": GroupQuery(statuses=("open", "regressed")),
    "all, count": GroupQuery(sort="count"),
    "all, first seen asc": GroupQuery(sort="first_seen", ascending=True),
}


def measure(store: GroupStore, groups: int, rounds: int) -> float:
    """Print the table for ``store``; the worst deep-page ratio keyset/offset."""
    worst = 0.0
    print(f"{'query':<22} {'depth':>7} {'offset ms':>10} {'keyset ms':>10} {'offset/keyset':>14}")
    for label, query in QUERIES.items():
        for depth in (0, groups // 2, groups - PAGE):
            after = None
            if depth:
                before = store.list_groups(query, limit=1, offset=depth - 1, count=False)[0]
                after = group_key(before[0], query.sort)
            offset_page = store.list_groups(query, limit=PAGE, offset=depth, count=False)[0]
            keyset_page = store.list_groups(query, limit=PAGE, after=after, count=False)[0]
            assert [g.fingerprint for g in offset_page] == [g.fingerprint for g in keyset_page]
            timings = compare(
                {
                    "offset": lambda q=query, d=depth: store.list_groups(
                        q, limit=PAGE, offset=d, count=False
                    ),
                    "keyset": lambda q=query, a=after: store.list_groups(
                        q, limit=PAGE, after=a, count=False
                    ),
                },
                calls=3,
                rounds=rounds,
            )
            offset_ms = timings["offset"].per_call * 1e3
            keyset_ms = timings["keyset"].per_call * 1e3
            ratio = offset_ms / keyset_ms
            print(f"{label:<22} {depth:>7} {offset_ms:>10.2f} {keyset_ms:>10.2f} {ratio:>13.1f}x")
            if depth == groups - PAGE:
                worst = max(worst, keyset_ms)
    return worst


@contextlib.contextmanager
def postgres_store(path: Path) -> Iterator[GroupStore]:
    """The benchmark's groups copied into a fresh database of a PostgreSQL server."""
    from faultlens_collector.store.postgres.database import PostgresDatabase

    from tests.postgres_support import fresh_database, start_cluster

    cluster = start_cluster()
    try:
        database = PostgresDatabase(fresh_database(cluster, "bench_paging"))
        store = database.group_store()
        source = SQLiteDatabase(path)
        try:
            copy_groups(source.group_store(), store)
            yield store
        finally:
            source.close()
            database.close()
    finally:
        cluster.destroy()


def copy_groups(source: GroupStore, target: GroupStore) -> None:
    """Every group of ``source`` into ``target`` (as occurrences: same keys)."""
    from faultlens_collector.groups.model import Occurrence

    batch: list[Occurrence] = []
    for group in source.iter_groups(GroupQuery()):
        first = Occurrence(
            fingerprint=group.fingerprint,
            exception_type=group.exception_type,
            message=group.message,
            stacktrace=group.stacktrace,
            category=group.category,
            severity=group.severity,
            handled=None,
            count=group.count,
            time_unix_nano=group.first_seen,
            service="svc",
            span_name="span",
            trace_id="",
            span_id="",
        )
        batch += [first]
        if group.last_seen != group.first_seen:
            batch.append(dataclasses.replace(first, count=0, time_unix_nano=group.last_seen))
        if len(batch) >= 2000:
            target.apply(batch)
            batch = []
    target.apply(batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="also against PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "faultlens.db"
        started = time.perf_counter()
        fill_store(path, args.groups)
        print(f"{args.groups:,} groups written in {time.perf_counter() - started:.1f} s\n")
        database = SQLiteDatabase(path)
        store = database.group_store()
        try:
            print("SQLite")
            worst = measure(store, args.groups, args.rounds)
        finally:
            store.close()
            database.close()
        print(f"\nlast page with a keyset cursor (SQLite, worst sort): {worst:.2f} ms")
        if args.postgres:
            with postgres_store(path) as pg:
                print("\nPostgreSQL")
                measure(pg, args.groups, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
