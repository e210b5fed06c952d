"""The action store contract, for the in-memory and the SQLite implementation."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from actions_support import (  # noqa: F401 (fixture)
    FP,
    FP2,
    any_store_fixture,
    facts,
    sqlite_action_store,
)
from faultlens_collector.actions import Alert, AuditRecord, FixRecord, HaltRecord, HookJob
from faultlens_collector.actions.store import ActionStore
from faultlens_collector.store.errors import SchemaError
from faultlens_collector.store.sqlite.actions import SCHEMA_VERSION, apply_migrations


def audit(record_id: str, at: float, *, hook: str = "h", fingerprint: str = FP) -> AuditRecord:
    return AuditRecord(record_id, at, "fix", "r", hook, fingerprint, "ok", 0, 0.1, "tail", "exit 0")


def alert(alert_id: str, at: float = 1.0) -> Alert:
    return Alert(alert_id, "new_failure", at, "high", "body", {"failure.count": 3, "tags": ("a",)})


def test_audit(any_store: ActionStore) -> None:
    any_store.add_audit(audit("a", 1.0))
    any_store.add_audit(audit("b", 2.0, hook="other"))
    any_store.add_audit(audit("c", 3.0, fingerprint=FP2))
    assert [r.id for r in any_store.audit_records()] == ["c", "b", "a"]
    assert [r.id for r in any_store.audit_records(fingerprint=FP)] == ["b", "a"]
    assert [r.id for r in any_store.audit_records(hook="h")] == ["c", "a"]
    assert [r.id for r in any_store.audit_records(limit=1)] == ["c"]
    assert any_store.audit_records()[-1] == audit("a", 1.0)


def test_audit_records_by_group(any_store: ActionStore) -> None:
    for index in range(5):
        any_store.add_audit(audit(f"a{index}", float(index)))
    any_store.add_audit(audit("b0", 9.0, fingerprint=FP2))
    any_store.add_audit(audit("later-but-same-time", 4.0))  # a tie: the one added last first
    found = any_store.audit_records_by_group([FP, FP2, "00000000000000ff"], 3)
    assert {group: [r.id for r in records] for group, records in found.items()} == {
        FP: ["later-but-same-time", "a4", "a3"],
        FP2: ["b0"],
    }
    assert any_store.audit_records_by_group([], 3) == {}
    many = [f"{index:016x}" for index in range(1200)] + [FP2]  # more than one IN (…) batch
    assert list(any_store.audit_records_by_group(many, 1)) == [FP2]


def test_halts(any_store: ActionStore) -> None:
    first = HaltRecord("h1", "rule", (("service.name", "a"),), "3 failures", 10.0, (FP,))
    second = HaltRecord("h2", "rule", (("service.name", "b"),), "3 failures", 20.0)
    any_store.save_halt(first)
    any_store.save_halt(second)
    assert any_store.active_halts() == [first, second]
    resumed = HaltRecord(
        **{
            **first.as_json(),
            "key": first.key,
            "fingerprints": (FP,),
            "resumed_at": 30.0,
            "resumed_by": "ops",
        }
    )
    any_store.save_halt(resumed)
    assert any_store.active_halts() == [second]
    assert any_store.halt_history() == [second, resumed]


def test_outbox(any_store: ActionStore) -> None:
    assert any_store.add_alert(alert("x"))
    assert any_store.add_alert(alert("y"))
    assert not any_store.add_alert(alert("x"))  # the same occurrence, refused
    pending = any_store.pending_alerts(10)
    assert [(p.alert.id, p.alert) for p in pending] == [("x", alert("x")), ("y", alert("y"))]
    assert pending[0].seq < pending[1].seq
    assert [p.alert.id for p in any_store.pending_alerts(1)] == ["x"]
    any_store.mark_alerts_sent([pending[0].seq], sent_at=5.0)
    assert [p.alert.id for p in any_store.pending_alerts(10)] == ["y"]
    assert not any_store.add_alert(alert("x"))  # still remembered once sent
    assert any_store.prune_sent_alerts(before=4.0) == 0
    assert any_store.prune_sent_alerts(before=6.0) == 1
    assert any_store.add_alert(alert("x"))  # forgotten after the retention


def test_held_alerts(any_store: ActionStore) -> None:
    """Root-cause linking holds a new group's alert: durable at once, sent when released
    or when its time comes, or forgotten."""
    far = time.time() + 3600
    assert any_store.hold_alert(alert("released"), far)
    assert any_store.hold_alert(alert("dropped"), far)
    assert any_store.hold_alert(alert("due"), time.time() - 1)  # its time has come
    assert any_store.hold_alert(alert("kept"), far)
    assert not any_store.hold_alert(alert("due"), far)  # one alert per id, held or not
    assert [p.alert.id for p in any_store.pending_alerts(10)] == ["due"]
    assert any_store.settle_held_alert("released", send=True)
    assert any_store.settle_held_alert("dropped", send=False)
    assert not any_store.settle_held_alert("dropped", send=True)  # gone
    assert not any_store.settle_held_alert("nothing", send=True)
    assert [p.alert.id for p in any_store.pending_alerts(10)] == ["released", "due"]
    assert any_store.add_alert(alert("dropped"))  # forgotten: its id is free
    if not any_store.shared:  # at start, what a killed run held goes out
        assert any_store.release_held_alerts() == 2  # "due" and "kept"
        assert "kept" in [p.alert.id for p in any_store.pending_alerts(10)]


def test_cooldowns(any_store: ActionStore) -> None:
    any_store.set_cooldown("h", FP, 100.0)
    any_store.set_cooldown("h", FP2, 50.0)
    assert any_store.cooldowns(now=60.0) == {("h", FP): 100.0}
    assert any_store.prune_cooldowns(now=60.0) == 1
    any_store.set_cooldown("h", FP, 200.0)
    assert any_store.cooldowns(now=0.0) == {("h", FP): 200.0}


def test_fixes(any_store: ActionStore) -> None:
    pending = FixRecord("f1", "h", "r", FP, 1.0, 11.0, 0.5)
    any_store.save_fix(pending)
    any_store.save_fix(FixRecord("f2", "h", "r", FP2, 1.0, 11.0, 0.5, "verified", 11.0, "ok"))
    any_store.save_fix(FixRecord("f3", "h", "r", FP2, 2.0, 12.0, 0.7, "failed", 5.0, "recurred"))
    any_store.save_fix(FixRecord("f4", "other", "r", FP2, 2.0, 12.0, 0.7, "failed", 6.0, "x"))
    assert any_store.pending_fixes() == [pending]
    assert [f.id for f in any_store.decided_fixes("h", 10)] == ["f2", "f3"]
    assert [f.id for f in any_store.decided_fixes("h", 1)] == ["f2"]
    found = any_store.fixes_by_id(["f1", "f3", "no-such-fix", "f1"])
    assert found == {"f1": pending, "f3": any_store.decided_fixes("h", 10)[1]}
    assert any_store.fixes_by_id([]) == {}


def test_jobs(any_store: ActionStore) -> None:
    halt = HaltRecord("h1", "rule", (("service.name", "a"),), "why", 10.0)
    job = HookJob("j1", "h", "r", "halt", facts(attributes={"tags": ("a", "b")}), 2.0, halt)
    any_store.save_job(job)
    any_store.save_job(HookJob("j0", "h", "r", "fix", facts(), 1.0))
    assert [j.id for j in any_store.pending_jobs()] == ["j0", "j1"]
    assert any_store.pending_jobs()[1] == job
    any_store.delete_job("j0")
    any_store.delete_job("never-saved")
    assert any_store.pending_jobs() == [job]


def test_conditions(any_store: ActionStore) -> None:
    any_store.raise_condition("a", 1.0)
    any_store.raise_condition("b", 1.0)
    any_store.raise_condition("a", 2.0)
    assert any_store.conditions() == {"a", "b"}
    any_store.clear_conditions(["a", "unknown"])
    assert any_store.conditions() == {"b"}


def test_sqlite_keeps_everything_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    store = sqlite_action_store(path)
    store.add_audit(audit("a", 1.0))
    store.save_halt(HaltRecord("h1", "rule", (("service.name", "a"),), "why", 10.0, (FP,)))
    store.add_alert(alert("x"))
    store.set_cooldown("h", FP, 100.0)
    store.save_fix(FixRecord("f1", "h", "r", FP, 1.0, 11.0, 0.5))
    store.save_job(HookJob("j1", "h", "r", "fix", facts(), 2.0))
    store.raise_condition("c", 1.0)
    store.close()

    again = sqlite_action_store(path)
    assert [r.id for r in again.audit_records()] == ["a"]
    assert [h.id for h in again.active_halts()] == ["h1"]
    assert [p.alert.id for p in again.pending_alerts(10)] == ["x"]
    assert again.cooldowns(0.0) == {("h", FP): 100.0}
    assert [f.id for f in again.pending_fixes()] == ["f1"]
    assert [j.id for j in again.pending_jobs()] == ["j1"]
    assert again.conditions() == {"c"}
    again.close()


def test_sqlite_schema_version_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    sqlite_action_store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute(
        "SELECT version FROM faultlens_schema WHERE component = 'actions'"
    ).fetchone() == (SCHEMA_VERSION,)
    db.execute("UPDATE faultlens_schema SET version = 99 WHERE component = 'actions'")
    db.commit()
    db.close()
    with pytest.raises(SchemaError, match="schema version 99, newer than this faultlens"):
        sqlite_action_store(path)


def test_migrations_can_run_on_a_foreign_connection(tmp_path: Path) -> None:
    """The processor adopts the action tables into its own database."""
    db = sqlite3.connect(tmp_path / "processor.db", isolation_level=None)
    db.execute("CREATE TABLE faultlens_schema (component TEXT PRIMARY KEY, version INTEGER)")
    db.execute("INSERT INTO faultlens_schema VALUES ('processor', 7)")
    assert apply_migrations(db) == 0
    assert apply_migrations(db) == SCHEMA_VERSION  # idempotent
    rows = dict(db.execute("SELECT component, version FROM faultlens_schema").fetchall())
    assert rows == {"processor": 7, "actions": SCHEMA_VERSION}
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"action_audit", "action_halts", "action_outbox", "action_jobs"} <= tables
    db.close()


def test_sqlite_bounds_the_audit_trail(tmp_path: Path) -> None:
    store = sqlite_action_store(tmp_path / "a.db", max_audit_records=10)
    for index in range(1000):
        store.add_audit(audit(f"r{index}", float(index)))
    records = store.audit_records(limit=10_000)
    assert len(records) == 10
    assert records[0].id == "r999"
    store.close()


def test_an_unusable_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SchemaError, match=r"cannot use .*not-a-db as the action store"):
        sqlite_action_store(path)
