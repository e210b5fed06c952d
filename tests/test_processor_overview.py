"""What the web console needs from the control API: hourly occurrence counts (store and
GetSeries), the new GroupFilter fields, WatchGroups, ListAlerts, per-group bulk results
and ListHookRuns since a time."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient, ControlError
from faultlens_collector.groups.model import HOUR_NANOS, MAX_SERVICES, OTHER_SERVICES
from faultlens_collector.groups.store import GroupQuery, GroupUpdate, OperatorAction, SeriesQuery
from faultlens_collector.store.sqlite import history
from faultlens_collector.store.sqlite.groups import FOLD_AFTER_ROWS, MIGRATIONS, SQLiteGroupStore

from tests.processor_support import (
    TRACE_EXPORT,
    failure_attributes,
    occurrence,
    raw_call,
    running_processor,
    span,
    sqlite_group_store,
    trace_request,
)

A, B, C = "aaaa000000000001", "bbbb000000000002", "cccc000000000003"
H0 = 480_000  # an hour number (2024-10-04)
T0 = H0 * HOUR_NANOS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteGroupStore]:
    opened = sqlite_group_store(tmp_path / "groups.db")
    yield opened
    opened.close()


def series(store: SQLiteGroupStore, **fields: Any) -> dict[str, list[int]]:
    query = SeriesQuery(**{"start_hour": H0, "end_hour": H0 + 4, **fields})
    return {key: counts for key, counts, _ in store.series(query).series}


# the store's hourly counts
def test_counts_land_in_the_hour_and_service_of_each_occurrence(store: SQLiteGroupStore) -> None:
    store.apply([occurrence(A, time_unix_nano=T0 + 5, count=3)])  # a new group
    store.apply(
        [
            occurrence(A, time_unix_nano=T0 + HOUR_NANOS + 1),
            occurrence(A, time_unix_nano=T0 + 2 * HOUR_NANOS, service="cart", count=4),
            occurrence(B, time_unix_nano=T0 + 2 * HOUR_NANOS),
        ]
    )
    store.apply([occurrence(A, time_unix_nano=T0 + HOUR_NANOS + 7, count=2)])  # a known group
    assert series(store, fingerprints=(A, B, C)) == {
        A: [3, 3, 4, 0],
        B: [0, 0, 1, 0],
        C: [0, 0, 0, 0],
    }
    assert series(store, group_by="service") == {"checkout": [3, 3, 1, 0], "cart": [0, 0, 4, 0]}
    assert series(store, group_by="") == {"total": [3, 3, 5, 0]}
    wide = SeriesQuery(start_hour=H0, end_hour=H0 + 4, bucket_hours=2, fingerprints=(A,))
    assert store.series(wide).series == [(A, [6, 4], 10)]


def test_counts_survive_the_fold_and_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "groups.db"
    store = sqlite_group_store(path)
    store.apply([occurrence(A, time_unix_nano=T0)])
    for _ in range(3):
        store.apply([occurrence(A, time_unix_nano=T0 + 10)])  # logged, not folded
    # a crash: the writer dies without closing, the next process folds the log
    reopened = sqlite_group_store(path)
    try:
        assert series(reopened, fingerprints=(A,)) == {A: [4, 0, 0, 0]}
        assert reopened.get_group(A).count == 4
    finally:
        reopened.close()


def test_a_long_log_is_folded_with_its_hours(store: SQLiteGroupStore) -> None:
    store.apply([occurrence(A, time_unix_nano=T0)])
    for index in range(FOLD_AFTER_ROWS + 5):
        store.apply([occurrence(A, time_unix_nano=T0 + (index % 3) * HOUR_NANOS)])
    assert sum(series(store, fingerprints=(A,))[A]) == FOLD_AFTER_ROWS + 6


def test_services_beyond_the_limit_are_counted_as_other(store: SQLiteGroupStore) -> None:
    store.apply(
        [occurrence(A, time_unix_nano=T0, service=f"s{index}") for index in range(MAX_SERVICES + 3)]
    )
    by_service = series(store, group_by="service")
    assert by_service[OTHER_SERVICES] == [3, 0, 0, 0]
    assert len(by_service) == MAX_SERVICES + 1


def test_an_occurrence_without_a_time_counts_at_the_processors_clock(
    store: SQLiteGroupStore,
) -> None:
    store.apply([occurrence(A, time_unix_nano=0)])
    now_hour = time.time_ns() // HOUR_NANOS
    query = SeriesQuery(start_hour=now_hour - 1, end_hour=now_hour + 1, fingerprints=(A,))
    assert store.series(query).series == [(A, [0, 1], 1)]


def test_old_hours_are_pruned(store: SQLiteGroupStore) -> None:
    store.apply([occurrence(A, time_unix_nano=T0), occurrence(A, time_unix_nano=T0 + HOUR_NANOS)])
    removed = store.prune_hours(T0 + (history.RETENTION_HOURS + 1) * HOUR_NANOS)
    assert removed == 1
    assert series(store, fingerprints=(A,)) == {A: [0, 1, 0, 0]}


def test_the_top_groups_come_first_and_the_rest_are_counted(store: SQLiteGroupStore) -> None:
    store.apply(
        [occurrence(f"{index:016x}", time_unix_nano=T0, count=index + 1) for index in range(12)]
    )
    result = store.series(
        SeriesQuery(start_hour=H0, end_hour=H0 + 1, group_by="fingerprint", limit=5)
    )
    assert [key for key, _, _ in result.series] == [f"{index:016x}" for index in range(11, 6, -1)]
    assert result.more == 7


def test_sums_by_category_follow_the_groups_current_category(store: SQLiteGroupStore) -> None:
    store.apply(
        [
            occurrence(A, time_unix_nano=T0, category="timeout"),
            occurrence(B, time_unix_nano=T0, category="io", count=2),
            occurrence(C, time_unix_nano=T0 + HOUR_NANOS, category="io", severity="critical"),
        ]
    )
    assert series(store, group_by="category") == {"io": [2, 1, 0, 0], "timeout": [1, 0, 0, 0]}
    assert series(store, group_by="severity", groups=GroupQuery(severities=("critical",))) == {
        "critical": [0, 1, 0, 0]
    }


def test_a_regression_is_dated(store: SQLiteGroupStore) -> None:
    store.apply([occurrence(A, time_unix_nano=T0)])
    store.update_groups(
        GroupQuery(fingerprints=(A,)), GroupUpdate(status="resolved"), OperatorAction("r", "t", "")
    )
    before = time.time_ns()
    store.apply([occurrence(A, time_unix_nano=T0 + 1)])
    group = store.get_group(A)
    assert group.status == "regressed"
    assert group.regressed_at >= before
    assert store.count_groups(GroupQuery(regressed_since=before)) == 1
    assert store.count_groups(GroupQuery(regressed_since=time.time_ns() + 1)) == 0


def test_a_version_4_store_gets_hours_and_keeps_its_log(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    store = sqlite_group_store(path)
    store.apply([occurrence(A, time_unix_nano=T0)])
    store.apply([occurrence(A, time_unix_nano=T0)])
    # Back to version 4 by hand: what an older processor left (log rows without hours).
    connection = sqlite3.connect(path)
    connection.executescript(
        "DROP TABLE group_hours; ALTER TABLE group_log DROP COLUMN hour; "
        "ALTER TABLE group_log DROP COLUMN service; ALTER TABLE group_log DROP COLUMN added; "
        "DROP INDEX failure_groups_regressed; "
        "ALTER TABLE failure_groups DROP COLUMN regressed_at; "
        "UPDATE faultlens_schema SET version = 4 WHERE component = 'groups';"
    )
    connection.close()
    assert len(MIGRATIONS) == 6  # version 6: the sort indexes end with the fingerprint
    reopened = sqlite_group_store(path)
    try:
        assert reopened.get_group(A).count == 2  # the log folded without hours
        reopened.apply([occurrence(A, time_unix_nano=T0)])
        assert series(reopened, fingerprints=(A,)) == {A: [1, 0, 0, 0]}
    finally:
        reopened.close()


# the new GroupFilter fields
def test_text_type_handled_and_first_seen_filters(store: SQLiteGroupStore) -> None:
    store.apply(
        [
            occurrence(A, message="card 50% declined_x", handled=True, time_unix_nano=10),
            occurrence(B, exception_type="KeyError", message="k", handled=False, time_unix_nano=20),
            occurrence(B, handled=True, time_unix_nano=21),
            occurrence(C, message="Timeout talking to PRICING", time_unix_nano=30),
        ]
    )

    def matching(**fields: Any) -> set[str]:
        groups, _ = store.list_groups(GroupQuery(**fields), limit=10)
        return {group.fingerprint for group in groups}

    assert matching(text="pricing") == {C}
    assert matching(text="50%") == {A}  # % and _ are literal
    assert matching(text="d_x") == {A}
    assert matching(text="0%d") == set()
    assert matching(text="keyerr") == {B}
    assert matching(text="bbbb0") == {B}
    assert matching(exception_types=("KeyError",)) == {B}
    assert matching(handled="some") == {A, B}
    assert matching(handled="escaped") == {B, C}  # C: handled unknown counts as escaped
    assert matching(first_seen_since=20) == {B, C}
    assert matching(fingerprints=(A, C), text="declined") == {A}


# over gRPC
def send(address: str, *events: dict[str, Any], service: str = "checkout", when: int = 0) -> None:
    spans = [
        span(events=[event], index=index + 1, time_unix_nano=when or time.time_ns())
        for index, event in enumerate(events)
    ]
    _, error = raw_call(address, TRACE_EXPORT, trace_request(spans, service).SerializeToString())
    assert error is None


def test_get_series_over_grpc(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        now = time.time_ns()
        send(processor.address, failure_attributes(A), failure_attributes(A), when=now)
        send(processor.address, failure_attributes(B), service="cart", when=now - HOUR_NANOS)
        reply = client.call("GetSeries", control_pb2.SeriesRequest(fingerprints=[A, B, C]))
        assert reply.bucket_seconds == 3600
        assert reply.buckets == 24
        assert reply.start_unix_nano % HOUR_NANOS == 0
        assert {s.key: (s.counts[-1], s.counts[-2], s.total) for s in reply.series} == {
            A: (2, 0, 2),
            B: (0, 1, 1),
            C: (0, 0, 0),
        }
        by_service = client.call(
            "GetSeries",
            control_pb2.SeriesRequest(group_by="service", bucket_seconds=6 * 3600),
        )
        assert by_service.buckets == 4 or by_service.buckets == 5
        assert {s.key: s.total for s in by_service.series} == {"checkout": 2, "cart": 1}
        filtered = client.call(
            "GetSeries",
            control_pb2.SeriesRequest(
                group_by="", filter=control_pb2.GroupFilter(services=["cart"])
            ),
        )
        assert [(s.key, s.total) for s in filtered.series] == [("total", 1)]
        for bad in (
            control_pb2.SeriesRequest(bucket_seconds=60),
            control_pb2.SeriesRequest(group_by="message"),
            control_pb2.SeriesRequest(start_unix_nano=now, end_unix_nano=now - HOUR_NANOS),
            control_pb2.SeriesRequest(start_unix_nano=1, end_unix_nano=now),
            control_pb2.SeriesRequest(filter=control_pb2.GroupFilter(handled=7)),
        ):
            with pytest.raises(ControlError) as caught:
                client.call("GetSeries", bad)
            assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT, bad
        huge = client.call(
            "GetSeries",
            control_pb2.SeriesRequest(start_unix_nano=2**64 - 1, end_unix_nano=2**64 - 1),
        )
        assert all(s.total == 0 for s in huge.series)
        early = client.call("GetSeries", control_pb2.SeriesRequest(end_unix_nano=1))
        assert (early.start_unix_nano, early.buckets) == (0, 1)  # a day back stops at 1970
        with pytest.raises(ControlError) as unknown:
            client.call("ListAlerts", control_pb2.ListAlertsRequest(kinds=["nope"]))
        assert unknown.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_list_groups_filters_over_grpc(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        send(
            processor.address,
            failure_attributes(A, message="<img src=x onerror=alert(1)>", failure_handled=True),
            failure_attributes(B, exception_type="KeyError", failure_handled=False),
        )

        def listed(**fields: Any) -> set[str]:
            reply = client.list_groups(
                control_pb2.ListGroupsRequest(filter=control_pb2.GroupFilter(**fields))
            )
            return {group.fingerprint for group in reply.groups}

        assert listed(text="ONERROR") == {A}
        assert listed(handled=control_pb2.HANDLED_SOME) == {A}
        assert listed(handled=control_pb2.HANDLED_ESCAPED) == {B}
        assert listed(exception_types=["KeyError"]) == {B}
        assert listed(fingerprints=[B, C]) == {B}
        assert listed(first_seen_since_unix_nano=2**64 - 1) == set()
        assert listed(regressed_since_unix_nano=1) == set()
        with pytest.raises(ControlError) as caught:
            listed(text="x" * 257)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_watch_groups_announces_created_updated_regressed_and_actions(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        send(processor.address, failure_attributes(A))
        stream = client.stream(
            "WatchGroups", control_pb2.WatchGroupsRequest(heartbeat_seconds=1), timeout=30
        )
        events: list[Any] = []
        done = threading.Event()

        def follow() -> None:
            for event in stream:
                events.append(event)
                if any(e.actions for e in events) and any(e.regressed for e in events):
                    done.set()
                    return

        threading.Thread(target=follow, daemon=True).start()
        deadline = time.monotonic() + 10
        while processor.group_watch is not None and not processor.group_watch.watchers:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        send(processor.address, failure_attributes(B), failure_attributes(A))
        time.sleep(0.3)
        client.call(
            "Resolve",
            control_pb2.SetStatusRequest(
                selection=control_pb2.GroupSelection(fingerprints=[A]), actor="ann"
            ),
        )
        time.sleep(0.3)
        send(processor.address, failure_attributes(A))
        assert done.wait(10), events
        changed = [e for e in events if not e.heartbeat]
        assert B in changed[0].created
        assert A in changed[0].updated
        assert [action.actor for e in changed for action in e.actions] == ["ann"]
        assert any(A in e.regressed for e in changed)
        versions = [e.version for e in events]
        assert versions == sorted(versions)


def test_watch_groups_sends_heartbeats_and_costs_nothing_unwatched(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        assert processor.group_watch is not None
        assert processor.group_watch.watchers == 0
        first = next(
            client.stream(
                "WatchGroups", control_pb2.WatchGroupsRequest(heartbeat_seconds=1), timeout=10
            )
        )
        assert first.heartbeat
        assert not first.created


def test_list_alerts_newest_first(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        send(processor.address, failure_attributes(A))
        send(processor.address, failure_attributes(B))
        deadline = time.monotonic() + 10
        while True:
            alerts = client.call("ListAlerts", control_pb2.ListAlertsRequest()).alerts
            if len(alerts) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [alert.kind for alert in alerts] == ["new_failure", "new_failure"]
        assert B in alerts[0].body
        assert A in alerts[1].body
        one = client.call("ListAlerts", control_pb2.ListAlertsRequest(limit=1)).alerts
        assert len(one) == 1
        none = client.call("ListAlerts", control_pb2.ListAlertsRequest(kinds=["halt"])).alerts
        assert not none


def test_bulk_replies_list_each_group(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        send(processor.address, failure_attributes(A), failure_attributes(B))
        reply = client.call(
            "Dismiss",
            control_pb2.DismissRequest(
                selection=control_pb2.GroupSelection(all=True), reason="noise", actor="ann"
            ),
        )
        assert [(r.fingerprint, r.outcome) for r in reply.results] == [
            (A, "changed"),
            (B, "changed"),
        ]
        assert not reply.results_truncated
        dry = client.call(
            "Reopen",
            control_pb2.SetStatusRequest(
                selection=control_pb2.GroupSelection(all=True), dry_run=True
            ),
        )
        assert dry.matched == 2
        assert not dry.results


def test_list_hook_runs_since(tmp_path: Path) -> None:
    from faultlens_collector.actions import ActionsConfig
    from faultlens_collector.actions.config import parse_config

    config: ActionsConfig = parse_config(
        {"hooks": {"noop": {"command": ["true"], "verification_window": "1h"}}}
    )
    with (
        running_processor(tmp_path, actions=config) as processor,
        ControlClient(processor.address) as client,
    ):
        send(processor.address, failure_attributes(A), failure_attributes(B))
        fixed = client.call(
            "Fix",
            control_pb2.FixRequest(
                selection=control_pb2.GroupSelection(fingerprints=[A, B]), hook="noop"
            ),
        )
        assert {(r.fingerprint, r.outcome) for r in fixed.results} == {
            (A, "queued"),
            (B, "queued"),
        }
        deadline = time.monotonic() + 20
        while len(client.call("ListHookRuns", control_pb2.ListHookRunsRequest()).runs) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        later = time.time_ns()
        assert not client.call(
            "ListHookRuns", control_pb2.ListHookRunsRequest(since_unix_nano=later)
        ).runs
        assert (
            len(
                client.call("ListHookRuns", control_pb2.ListHookRunsRequest(since_unix_nano=1)).runs
            )
            == 2
        )


def test_a_page_without_its_total(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        send(processor.address, *(failure_attributes(f"{index:016x}") for index in range(5)))
        first = client.list_groups(control_pb2.ListGroupsRequest(limit=3, skip_total=True))
        assert (len(first.groups), first.total) == (3, 0)
        rest = client.list_groups(
            control_pb2.ListGroupsRequest(
                limit=3, skip_total=True, page_token=first.next_page_token
            )
        )
        assert len(rest.groups) == 2
        assert rest.next_page_token == ""
        assert {g.fingerprint for g in [*first.groups, *rest.groups]} == {
            f"{index:016x}" for index in range(5)
        }


def test_service_names_that_look_like_json_match_exactly(store: SQLiteGroupStore) -> None:
    tricky = ['a","b', "b", 'x,"b":', "ünïcode", "{b"]
    store.apply([occurrence(f"{index:016x}", service=name) for index, name in enumerate(tricky)])
    for index, name in enumerate(tricky):
        groups, _ = store.list_groups(GroupQuery(services=(name,)), limit=10)
        assert [group.fingerprint for group in groups] == [f"{index:016x}"], name
