"""Bulk triage: the group store's operator changes (v2 schema), the control RPCs, the
operator log, the command line, and 10,000 groups at once."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.cli import main
from faultlens_collector.control.client import ControlClient, ControlError
from faultlens_collector.groups.model import HOUR_NANOS, Dismissal
from faultlens_collector.groups.store import GroupQuery, GroupStore, GroupUpdate, OperatorAction
from faultlens_collector.processor.server import Processor
from faultlens_collector.store.sqlite import connection as sqlite_db
from faultlens_collector.store.sqlite.groups import MIGRATIONS

from tests.processor_support import (
    TRACE_EXPORT,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    sqlite_group_store,
    trace_request,
)
from tests.test_processor_store import occurrence

A, B, C = "aaaa000000000001", "bbbb000000000002", "cccc000000000003"
ACTION = OperatorAction("test", "tester", "here")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GroupStore]:
    opened = sqlite_group_store(tmp_path / "groups.db")
    yield opened
    opened.close()


def update(store: GroupStore, fingerprints: tuple[str, ...], **changes: Any) -> int:
    return store.update_groups(
        GroupQuery(fingerprints=fingerprints), GroupUpdate(**changes), ACTION
    ).count


# the store
def test_a_version_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    connection = sqlite_db.connect(path, what="test")
    sqlite_db.apply_migrations(connection, "groups", MIGRATIONS[:1])
    connection.execute(
        "INSERT INTO failure_groups VALUES "
        "(?, 'E', 'm', '', 'io', 'high', 2, 'open', 3, 0, 1, 2, '{\"svc\":3}', '[]', '[]', 0)",
        (A,),
    )
    connection.close()
    store = sqlite_group_store(path)
    group = store.get_group(A)
    assert (group.count, group.tags, group.dismissal, group.severity_locked) == (3, [], None, False)
    assert update(store, (A,), add_tags=("legacy",)) == 1
    assert store.get_group(A).tags == ["legacy"]
    store.close()


def test_an_operators_category_and_severity_stay(store: GroupStore) -> None:
    store.apply([occurrence(A, category="unknown", severity="medium")])
    update(store, (A,), category="dependency", severity="low")
    store.apply([occurrence(A, category="timeout", severity="critical")])
    group = store.get_group(A)
    assert (group.category, group.severity) == ("dependency", "low")
    assert group.category_locked
    assert group.severity_locked
    found, _ = store.list_groups(GroupQuery(severities=("low",)), limit=5)
    assert [g.fingerprint for g in found] == [A]


def test_tags_are_added_and_removed_sorted_and_once(store: GroupStore) -> None:
    store.apply([occurrence(A), occurrence(B)])
    update(store, (A, B), add_tags=("zeta", "alpha"))
    update(store, (A,), add_tags=("alpha", "mid"), remove_tags=("zeta",))
    assert store.get_group(A).tags == ["alpha", "mid"]
    assert store.get_group(B).tags == ["alpha", "zeta"]
    found, _ = store.list_groups(GroupQuery(tags=("mid", "nothing")), limit=5)
    assert [g.fingerprint for g in found] == [A]


def test_a_dismissal_ends_at_its_time(store: GroupStore) -> None:
    store.apply([occurrence(A), occurrence(B)])
    now = time.time_ns()
    for fingerprint, until in ((A, now + 10**9), (B, now + 3600 * 10**9)):
        update(
            store,
            (fingerprint,),
            status="dismissed",
            dismissal=Dismissal("noise", "me", now, until=until),
        )
    assert store.expire_dismissals(now) == 0
    assert store.expire_dismissals(now + 2 * 10**9) == 1
    assert store.get_group(A).status == "open"
    assert store.get_group(A).dismissal is None
    assert store.get_group(B).status == "dismissed"


def test_an_occurrence_after_the_end_time_reopens_without_a_reopen_alert(
    store: GroupStore,
) -> None:
    store.apply([occurrence(A)])
    past = time.time_ns() - 10**9
    update(store, (A,), status="dismissed", dismissal=Dismissal("x", "me", past - 1, until=past))
    (change,) = store.apply([occurrence(A)])
    assert change.group.status == "open"
    assert not change.reopened


def test_the_rate_limit_of_a_dismissal_counts_one_hour_windows() -> None:
    dismissal = Dismissal("noise", "me", 0, max_per_hour=3)
    start = 10 * HOUR_NANOS
    assert not dismissal.count(start, 2)
    assert not dismissal.count(start + HOUR_NANOS - 1, 1)  # 3 within the hour: not above
    assert not dismissal.count(start + HOUR_NANOS, 3)  # a new window
    assert dismissal.count(start + HOUR_NANOS + 5, 1)  # 4 within it


def test_a_dismissed_group_over_its_rate_is_reopened(store: GroupStore) -> None:
    store.apply([occurrence(A)])
    update(store, (A,), status="dismissed", dismissal=Dismissal("x", "me", 0, max_per_hour=2))
    (change,) = store.apply([occurrence(A, time_unix_nano=HOUR_NANOS, count=2)])
    assert change.group.status == "dismissed"
    assert store.get_group(A).dismissal.window_count == 2  # type: ignore[union-attr]
    (change,) = store.apply([occurrence(A, time_unix_nano=HOUR_NANOS + 1)])
    assert change.reopened
    assert store.get_group(A).status == "open"


def test_the_operator_log_lists_what_touched_a_group(store: GroupStore) -> None:
    store.apply([occurrence(A), occurrence(B)])
    first = store.update_groups(
        GroupQuery(), GroupUpdate(status="resolved"), OperatorAction("resolve", "ann", "p1")
    )
    store.update_groups(
        GroupQuery(fingerprints=(B,)),
        GroupUpdate(add_tags=("x",)),
        OperatorAction("categorize", "bob", "p2", {"add_tags": ["x"]}),
    )
    assert first.count == 2
    assert [a.action for a in store.operator_actions()] == ["categorize", "resolve"]
    assert [a.actor for a in store.operator_actions(fingerprint=A)] == ["ann"]
    (logged,) = store.operator_actions(action="categorize")
    assert (logged.count, logged.detail, logged.peer) == (1, {"add_tags": ["x"]}, "p2")


# the control API
@pytest.fixture
def processor(tmp_path: Path) -> Iterator[Processor]:
    with running_processor(tmp_path) as running:
        spans = [
            span("charge", index=1, events=[failure_attributes(A, failure_category="timeout")]),
            span("charge", index=2, events=[failure_attributes(B, failure_category="timeout")]),
            span("lookup", index=3, events=[failure_attributes(C, failure_category="lookup")]),
        ]
        _, error = raw_call(running.address, TRACE_EXPORT, trace_request(spans).SerializeToString())
        assert error is None
        yield running


@pytest.fixture
def client(processor: Processor) -> Iterator[ControlClient]:
    with ControlClient(processor.address) as connected:
        yield connected


def select(*fingerprints: str, everything: bool = False, **filter_: Any) -> Any:
    return control_pb2.GroupSelection(
        fingerprints=fingerprints, filter=control_pb2.GroupFilter(**filter_), all=everything
    )


def statuses(client: ControlClient) -> dict[str, str]:
    reply = client.call("ListGroups", control_pb2.ListGroupsRequest())
    return {group.fingerprint: group.status for group in reply.groups}


def refused(client: ControlClient, name: str, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ControlError) as caught:
        client.call(name, request)
    assert caught.value.code is not None
    return caught.value.code, str(caught.value)


def test_a_selection_must_name_its_groups(client: ControlClient) -> None:
    request = control_pb2.SetStatusRequest(selection=select())
    code, message = refused(client, "Resolve", request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "--all" in message
    reply = client.call("Resolve", control_pb2.SetStatusRequest(selection=select(everything=True)))
    assert reply.matched == 3
    assert set(statuses(client).values()) == {"resolved"}


def test_an_unknown_fingerprint_fails_the_whole_call(client: ControlClient) -> None:
    request = control_pb2.SetStatusRequest(selection=select(A, "ffff000000000000"))
    code, message = refused(client, "Resolve", request)
    assert code == grpc.StatusCode.NOT_FOUND
    assert "'ffff000000000000'" in message
    assert "nothing was changed" in message
    assert set(statuses(client).values()) == {"open"}
    assert client.call("ListAudit", control_pb2.ListAuditRequest()).actions == []
    for bad in ("xyz!", "abc"):
        code, _ = refused(client, "Resolve", control_pb2.SetStatusRequest(selection=select(bad)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_prefixes_and_filters_narrow_the_selection(client: ControlClient) -> None:
    reply = client.call(
        "Resolve", control_pb2.SetStatusRequest(selection=select("aaaa", C, categories=["timeout"]))
    )
    assert reply.matched == 1  # C is not a timeout
    assert statuses(client) == {A: "resolved", B: "open", C: "open"}
    code, _ = refused(client, "Resolve", control_pb2.SetStatusRequest(selection=select("aaaa1")))
    assert code == grpc.StatusCode.NOT_FOUND


def test_a_dry_run_counts_and_changes_nothing(client: ControlClient) -> None:
    reply = client.call(
        "Dismiss",
        control_pb2.DismissRequest(
            selection=select(categories=["timeout"]), reason="noise", dry_run=True
        ),
    )
    assert (reply.matched, reply.dry_run, reply.action_id) == (2, True, 0)
    assert set(statuses(client).values()) == {"open"}
    assert client.call("ListAudit", control_pb2.ListAuditRequest()).actions == []


def test_dismiss_keeps_reason_actor_and_terms(client: ControlClient, processor: Processor) -> None:
    until = time.time_ns() + 3600 * 10**9
    reply = client.call(
        "Dismiss",
        control_pb2.DismissRequest(
            selection=select(A),
            reason="flaky upstream",
            until_unix_nano=until,
            reopen_above_per_hour=50,
            actor="carol",
        ),
    )
    assert reply.matched == 1
    group = client.get_group(A)
    assert group.status == "dismissed"
    dismissal = group.dismissal
    assert (dismissal.reason, dismissal.by, dismissal.until_unix_nano) == (
        "flaky upstream",
        "carol",
        until,
    )
    assert dismissal.reopen_above_per_hour == 50
    (logged,) = client.call("ListAudit", control_pb2.ListAuditRequest(fingerprint=A)).actions
    assert (logged.action, logged.actor, logged.count) == ("dismiss", "carol", 1)
    assert logged.peer.startswith("ipv4:127.0.0.1:")
    assert json.loads(logged.detail_json)["reason"] == "flaky upstream"
    for bad in (
        control_pb2.DismissRequest(selection=select(A), reason=" "),
        control_pb2.DismissRequest(selection=select(A), reason="x", until_unix_nano=1),
    ):
        code, _ = refused(client, "Dismiss", bad)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    reply = client.call("Reopen", control_pb2.SetStatusRequest(selection=select(A)))
    assert not client.get_group(A).HasField("dismissal")
    assert client.get_group(A).status == "open"


def test_categorize_validates_and_locks(client: ControlClient) -> None:
    for bad in (
        control_pb2.CategorizeRequest(selection=select(A)),
        control_pb2.CategorizeRequest(selection=select(A), severity="urgent"),
        control_pb2.CategorizeRequest(selection=select(A), add_tags=["x" * 65]),
    ):
        code, _ = refused(client, "Categorize", bad)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    client.call(
        "Categorize",
        control_pb2.CategorizeRequest(
            selection=select(categories=["timeout"]), category="dependency", add_tags=["psp"]
        ),
    )
    group = client.get_group(B)
    assert (group.category, list(group.tags), group.category_locked) == (
        "dependency",
        ["psp"],
        True,
    )
    assert not group.severity_locked


def test_a_resolved_group_that_occurs_again_regresses(
    client: ControlClient, processor: Processor
) -> None:
    client.call("Resolve", control_pb2.SetStatusRequest(selection=select(A, B)))
    raw_call(
        processor.address,
        TRACE_EXPORT,
        trace_request([span(index=9, events=[failure_attributes(A)])]).SerializeToString(),
    )
    assert statuses(client) == {A: "regressed", B: "resolved", C: "open"}


def test_fix_needs_a_configured_hook(client: ControlClient) -> None:
    code, message = refused(
        client, "Fix", control_pb2.FixRequest(selection=select(A), hook="restart")
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "no hook named 'restart'" in message


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_bulk_commands(processor: Processor, capsys: pytest.CaptureFixture[str]) -> None:
    target = ("--target", processor.address, "--actor", "dave")
    code, out, _ = run(
        capsys,
        "failures",
        "dismiss",
        "--category",
        "timeout",
        "--reason",
        "n",
        "--dry-run",
        *target,
    )
    assert (code, out) == (0, "would dismiss 2 failure groups\n")
    code, out, _ = run(
        capsys, "failures", "dismiss", "--category", "timeout", "--reason", "n", "--until", "2h",
        *target,
    )  # fmt: skip
    assert code == 0
    assert out.startswith("dismissed 2 failure groups (operator log #")
    code, out, _ = run(
        capsys, "failures", "categorize", C, "--set-severity", "low", "--add-tag", "t", *target
    )
    assert out.startswith("categorized 1 failure group (")
    code, out, _ = run(capsys, "failures", "resolve", "--tag", "t", "--json", *target)
    assert json.loads(out)["matched"] == 1
    code, _, err = run(capsys, "failures", "reopen", *target)
    assert code == 1
    assert "--all" in err
    code, out, _ = run(capsys, "failures", "list", "--json", "--status", "dismissed", *target[:2])
    (shown,) = json.loads(out)[:1]
    assert shown["dismissal"]["by"] == "dave"
    assert shown["dismissal"]["until"] is not None
    code, out, _ = run(capsys, "audit", "--json", *target[:2])
    assert [action["action"] for action in json.loads(out)] == ["resolve", "categorize", "dismiss"]
    assert {action["actor"] for action in json.loads(out)} == {"dave"}
    code, out, _ = run(capsys, "audit", "--fingerprint", C, *target[:2])
    assert "categorize" in out
    assert "dismiss" not in out


def test_the_halts_commands(processor: Processor, capsys: pytest.CaptureFixture[str]) -> None:
    target = ("--target", processor.address)
    code, out, _ = run(
        capsys, "halts", "start", "--key", "service.name=pay", "--key", "shard=3",
        "--reason", "incident 42", "--actor", "eve", *target,
    )  # fmt: skip
    assert code == 0
    assert out.startswith("halted service.name=pay,shard=3 (id ")
    code, out, _ = run(capsys, "halts", "list", "--json", *target)
    (halt,) = json.loads(out)
    assert halt["key"] == {"service.name": "pay", "shard": 3}
    assert halt["rule"] == "manual"
    code, _, err = run(capsys, "halts", "resume", "--key", "service.name=pay", *target)
    assert code == 1
    assert "no halt on" in err
    code, out, _ = run(capsys, "halts", "resume", halt["id"], "--actor", "eve", *target)
    assert out.startswith(f"resumed {halt['id']}")
    code, out, _ = run(capsys, "halts", "list", *target)
    assert out == "no halts in force\n"
    code, out, _ = run(capsys, "audit", "--action", "resume", "--json", *target)
    (logged,) = json.loads(out)
    assert (logged["actor"], logged["count"]) == ("eve", 1)
    code, _, err = run(capsys, "halts", "start", "--key", "x", "--reason", "r", *target)
    assert code == 2
    assert "expected NAME=VALUE" in err


def test_bulk_operations_on_10000_groups(tmp_path: Path) -> None:
    seeded = sqlite_group_store(tmp_path / "faultlens.db")
    seeded.apply(
        [
            occurrence(f"{i:016x}", category="io" if i % 2 else "value", time_unix_nano=i + 1)
            for i in range(10_000)
        ]
    )
    seeded.close()
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        started = time.perf_counter()
        dismissed = client.call(
            "Dismiss",
            control_pb2.DismissRequest(selection=select(everything=True), reason="triage day"),
        )
        tagged = client.call(
            "Categorize",
            control_pb2.CategorizeRequest(
                selection=select(categories=["io"]), severity="low", add_tags=["disk"]
            ),
        )
        fingerprints = [f"{i:016x}" for i in range(0, 10_000, 2)]
        resolved = client.call(
            "Resolve", control_pb2.SetStatusRequest(selection=select(*fingerprints))
        )
        elapsed = time.perf_counter() - started
        assert (dismissed.matched, tagged.matched, resolved.matched) == (10_000, 5_000, 5_000)
        count = client.call(
            "ListGroups",
            control_pb2.ListGroupsRequest(
                filter=control_pb2.GroupFilter(statuses=["dismissed"], tags=["disk"]), limit=1
            ),
        ).total
        assert count == 5_000
        (last,) = client.call("ListAudit", control_pb2.ListAuditRequest(limit=1)).actions
        assert (last.action, last.count) == ("resolve", 5_000)
        assert [a.action for a in client.call(
            "ListAudit", control_pb2.ListAuditRequest(fingerprint="0000000000000001")
        ).actions] == ["categorize", "dismiss"]  # fmt: skip
    assert elapsed < 10, f"three bulk calls on 10,000 groups took {elapsed:.1f} s"


def test_sqlite_tags_expression_keeps_unicode(store: GroupStore) -> None:
    store.apply([occurrence(A)])
    update(store, (A,), add_tags=("Zürich", "東京"))
    assert store.get_group(A).tags == ["Zürich", "東京"]
    with sqlite3.connect(store.path) as raw:
        (text,) = raw.execute("SELECT tags FROM failure_groups").fetchone()
    assert json.loads(text) == ["Zürich", "東京"]
