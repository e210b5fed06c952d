"""The database seam: one database object, both stores taken from it; durability reaching
every table; ``:memory:`` end to end; locations no backend takes."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from actions_support import facts
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions import Alert, HaltRecord, HookJob
from faultlens_collector.control.client import ControlClient
from faultlens_collector.groups.store import GroupQuery
from faultlens_collector.store import MEMORY, StoreError, open_database
from faultlens_collector.store.sqlite.database import SQLiteDatabase

from tests.processor_support import (
    FAULTLENS,
    TRACE_EXPORT,
    ServeProcess,
    all_groups,
    failure_attributes,
    occurrence,
    raw_call,
    running_processor,
    span,
    trace_request,
)

FULL, NORMAL, OFF = 2, 1, 0


def synchronous(store: object) -> int:
    """``PRAGMA synchronous`` of the connection a store writes through."""
    (value,) = store.connection.execute("PRAGMA synchronous").fetchone()  # type: ignore[attr-defined]
    return int(value)


@pytest.mark.parametrize(("durable", "expected"), [(True, FULL), (False, NORMAL)])
def test_durable_reaches_the_groups_halts_alert_outbox_and_hook_jobs(
    tmp_path: Path, durable: bool, expected: int
) -> None:
    with running_processor(tmp_path, durable=durable) as processor:
        assert processor.store is not None
        assert processor.action_store is not None
        # Halts, the alert outbox and hook jobs are written by the action store: through
        # the same connection as the groups, with the database's durability.
        assert synchronous(processor.store) == expected
        assert synchronous(processor.action_store) == expected
        processor.action_store.save_halt(HaltRecord("h", "r", (("service.name", "a"),), "x", 1.0))
        processor.action_store.add_alert(Alert("a", "halt", 1.0, "high", "body", {}))
        processor.action_store.save_job(HookJob("j", "hook", "r", "fix", facts(), 1.0))
        assert synchronous(processor.action_store) == expected


def test_both_stores_write_through_the_one_connection_of_their_database(tmp_path: Path) -> None:
    database = SQLiteDatabase(tmp_path / "db", durable=True)
    groups = database.group_store()
    actions = database.action_store()
    assert groups.connection is actions.connection
    with pytest.raises(StoreError, match="taken already"):
        database.group_store()
    with pytest.raises(StoreError, match="taken already"):
        database.action_store()
    groups.apply([occurrence()])
    database.close()
    database.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        database.connection()
    reopened = SQLiteDatabase(tmp_path / "db")
    assert reopened.group_store().get_group("00000000000000aa").count == 1
    reopened.close()


def test_a_store_path_with_uri_characters_is_read_back(tmp_path: Path) -> None:
    database = open_database(tmp_path / "a?b#c%20d.db")
    groups = database.group_store()
    groups.apply([occurrence()])
    assert [group.fingerprint for group in groups.list_groups(GroupQuery(), limit=5)[0]] == [
        "00000000000000aa"
    ]
    database.close()


def test_memory_is_a_temporary_database_removed_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    database = open_database(MEMORY)
    assert database.location == MEMORY
    groups = database.group_store()
    actions = database.action_store()
    groups.apply([occurrence()])
    actions.raise_condition("c", 1.0)
    assert groups.get_group("00000000000000aa").count == 1  # a reader sees the writer's data
    assert synchronous(groups) == OFF
    assert any(tmp_path.iterdir())
    database.close()
    assert list(tmp_path.iterdir()) == []


def test_memory_cannot_be_durable_and_urls_are_refused_in_one_line() -> None:
    with pytest.raises(StoreError, match="keeps nothing: it cannot be durable"):
        open_database(MEMORY, durable=True)
    with pytest.raises(StoreError, match=r"mysql://… as the failure store") as refused:
        open_database("mysql://faultlens:secret@db.internal/faultlens")
    assert "secret" not in str(refused.value)
    assert "postgresql://" in str(refused.value)  # says what is taken


def test_serve_with_a_memory_store_works_end_to_end_and_leaves_nothing(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    request = trace_request([span(events=[failure_attributes("0123456789abcdef")])])
    serve = ServeProcess(Path(MEMORY), env={"TMPDIR": str(scratch)})
    with serve:
        assert raw_call(serve.address, TRACE_EXPORT, request.SerializeToString())[1] is None
        with ControlClient(serve.address) as client:
            # Reads, bulk triage and the operator log, not only ingest.
            assert all_groups(client)["0123456789abcdef"].count == 1
            reply = client.call(
                "Resolve",
                control_pb2.SetStatusRequest(
                    selection=control_pb2.GroupSelection(fingerprints=["0123456789abcdef"]),
                    actor="test",
                ),
            )
            assert reply.matched == 1
            assert all_groups(client)["0123456789abcdef"].status == "resolved"
            audit = client.call("ListAudit", control_pb2.ListAuditRequest())
            assert [action.action for action in audit.actions] == ["resolve"]
            halts = client.call("ListHalts", control_pb2.ListHaltsRequest())
            assert list(halts.halts) == []
        assert any(scratch.iterdir())
    assert serve.process is not None
    assert serve.process.returncode == 0
    assert "Traceback" not in "".join(serve.output)
    assert list(scratch.iterdir()) == []  # the temporary database is gone
    assert not Path(MEMORY).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", MEMORY, "--durable"], "a :memory: store keeps nothing: it cannot be durable"),
        (
            ["--store", "mysql://user:hunter2@db/faultlens"],
            "cannot use mysql://… as the failure store: give the path of a SQLite file, "
            ":memory:, or a postgresql:// URL",
        ),
        (
            ["--store", "postgresql://user:hunter2@db.invalid/faultlens"],
            "cannot connect to postgresql://user@db.invalid/faultlens: ",
        ),
    ],
)
def test_serve_refuses_stores_it_cannot_use_in_one_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        [str(FAULTLENS), "serve", "--listen", "127.0.0.1:0", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"faultlens: {message}")
    assert "hunter2" not in result.stderr
