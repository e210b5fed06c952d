"""Dependencies failing: the store's disk full or read-only, the forward hop down or slow.

A store that cannot commit makes ingest answer ``UNAVAILABLE`` with a retry
delay — never an acknowledgement for what it could not keep — and says so in
one log line; ingest recovers by itself when the store does. A forward hop that
is down or slow changes nothing for ingest; what cannot be forwarded is
dropped and counted by reason, and the counts add up.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from faultlens_collector.store.sqlite import connection as sqlite_db

from tests.processor_support import FAULTLENS, ServeProcess, running_processor
from tests.reliability import forwarding, load
from tests.reliability.harness import report, server_output, stored_occurrences

UNLIMITED_PAGES = 1_073_741_823


def test_a_full_disk_is_refused_retryably_and_ingest_recovers_when_space_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="faultlens_collector.groups.writer")
    with running_processor(tmp_path) as processor:
        store = processor.store
        assert store is not None
        before = load.drive(processor.address, clients=2, seconds=0.3, seed=1)
        (pages,) = store.connection.execute("PRAGMA page_count").fetchone()
        # The disk is full: the file cannot grow by a single page.
        store.connection.execute(f"PRAGMA max_page_count = {pages}")
        # New fingerprints need new rows, so every commit needs new pages.
        full = load.drive(processor.address, clients=2, seconds=0.5, seed=2, fingerprints=1 << 40)
        store.connection.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
        after = load.drive(processor.address, clients=2, seconds=0.3, seed=3)
        stored = stored_occurrences(processor.address)
    acknowledged = before.acknowledged + full.acknowledged + after.acknowledged
    report(
        "disk full",
        {
            "requests while full": full.requests,
            "refused with UNAVAILABLE+RetryInfo": full.refused,
            "acknowledged while full": full.acknowledged_requests,
            "acknowledged before/after": [
                before.acknowledged_requests,
                after.acknowledged_requests,
            ],
            "stored == acknowledged": stored == acknowledged,
        },
    )
    assert full.refused > 0
    assert full.uncertain == 0
    assert dict(full.other) == {}
    assert after.acknowledged_requests > 0
    assert stored == acknowledged
    messages = [record.getMessage() for record in caplog.records]
    assert [m for m in messages if "cannot commit" in m] == [
        "faultlens: the store cannot commit (OperationalError: database or disk is full); "
        "ingest answers UNAVAILABLE with a retry delay until it can"
    ]
    assert "faultlens: the store commits again" in messages


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """Make files unwritable even for root (``chattr +i``), or skip where that is impossible."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not available to make the store read-only")
    done: list[Path] = []
    try:
        for path in paths:
            result = subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False)
            if result.returncode != 0:
                pytest.skip(f"cannot make {path.name} read-only here: {result.stderr!r}")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run([chattr, "-i", str(path)], check=False)


@pytest.mark.slow
def test_a_store_that_turns_read_only_is_refused_retryably_and_a_read_only_store_does_not_start(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store.db"
    with ServeProcess(store) as serve:
        before = load.drive(serve.address, clients=2, seconds=0.3, seed=4)
        wal = store.with_name(store.name + "-wal")
        with immutable(store, wal):
            during = load.drive(serve.address, clients=2, seconds=0.3, seed=5)
        after = load.drive(serve.address, clients=2, seconds=0.3, seed=6)
        stored = stored_occurrences(serve.address)
        output = server_output(serve)
    assert during.refused > 0
    assert during.acknowledged_requests == 0
    assert during.uncertain == 0
    assert after.acknowledged_requests > 0
    assert stored == before.acknowledged + after.acknowledged
    assert "the store cannot commit" in output
    assert "the store commits again" in output
    assert "Traceback" not in output
    with immutable(store):
        result = subprocess.run(
            [str(FAULTLENS), "serve", "--listen", "127.0.0.1:0", "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip().endswith("attempt to write a readonly database")
    assert "Traceback" not in result.stderr


def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path: Path) -> None:
    connection = sqlite_db.connect(tmp_path / "db", what="test store")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    connection.execute(
        "CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    # A deferred constraint fails at COMMIT, which leaves SQLite's transaction open.
    with pytest.raises(sqlite3.IntegrityError), sqlite_db.transaction(connection):
        connection.execute("INSERT INTO child VALUES (42)")
    assert not connection.in_transaction
    with sqlite_db.transaction(connection):
        connection.execute("INSERT INTO parent VALUES (1)")
    assert connection.execute("SELECT COUNT(*) FROM child").fetchone() == (0,)
    connection.close()


@pytest.mark.slow
def test_a_forward_hop_down_or_slow_changes_nothing_for_ingest_and_drops_add_up(
    tmp_path: Path,
) -> None:
    runs = forwarding.forward_runs(tmp_path, 1.0)
    figures = forwarding.figures(runs)
    report("forward hop", figures)
    for mode, run in runs.items():
        result = run["result"]
        assert dict(result.other) == {}, mode
        assert result.shed == 0, mode
        assert run["exit code"] == 0, mode
        assert "Traceback" not in run["output"]
        if mode == "none":
            continue
        # Every acknowledged request is forwarded or dropped, and counted once.
        assert run["sent"] + sum(run["dropped"].values()) == result.acknowledged_requests, mode
        assert run["received by the hop"] == (run["sent"] if mode != "down" else 0)
        # Forwarding trouble never slows ingest down (generous: a shared 2-core machine).
        assert figures[mode]["vs no forwarding"] >= 0.5, (mode, figures)
    assert runs["down"]["sent"] == 0
    assert set(runs["down"]["dropped"]) <= {"reason=shutdown", "reason=queue_full"}
    assert runs["slow"]["dropped"].get("reason=queue_full", 0) > 0
    assert runs["healthy"]["dropped"] == {} or sum(runs["healthy"]["dropped"].values()) == 0
