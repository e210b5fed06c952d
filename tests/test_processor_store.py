"""The failure-group store: merging, status, bounds, queries, schema."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from faultlens_collector.groups import model as groups
from faultlens_collector.groups.model import Dismissal
from faultlens_collector.groups.store import (
    AmbiguousFingerprint,
    GroupNotFound,
    GroupQuery,
    GroupStore,
    GroupUpdate,
    OperatorAction,
)
from faultlens_collector.store.errors import SchemaError
from faultlens_collector.store.sqlite.groups import SCHEMA_VERSION, encode_counts
from hypothesis import given
from hypothesis import strategies as st

from tests.processor_support import occurrence, sqlite_group_store


def set_status(store: GroupStore, fingerprints: list[str], status: str) -> int:
    """Set the status as an operator's bulk action does; how many groups existed."""
    dismissal = Dismissal("test", "test", 1) if status == "dismissed" else None
    logged = store.update_groups(
        GroupQuery(fingerprints=tuple(fingerprints)),
        GroupUpdate(status=status, dismissal=dismissal),
        OperatorAction(status, "test", "local"),
    )
    return logged.count


@pytest.fixture
def store(tmp_path: Path) -> GroupStore:
    result = sqlite_group_store(tmp_path / "groups.db")
    yield result
    result.close()


def test_occurrences_of_one_fingerprint_merge_into_one_group(store: GroupStore) -> None:
    changes = store.apply(
        [
            occurrence(count=3, time_unix_nano=2_000, handled=True),
            occurrence(time_unix_nano=1_000, severity="critical", service="api", span_name="get"),
            occurrence("00000000000000bb"),
        ]
    )
    assert [(c.group.fingerprint, c.created, c.occurrences) for c in changes] == [
        ("00000000000000aa", True, 4),
        ("00000000000000bb", True, 1),
    ]
    group = store.get_group("00000000000000aa")
    assert group.count == 4
    assert group.handled_count == 3
    assert (group.first_seen, group.last_seen) == (1_000, 2_000)
    assert group.severity == "critical"
    assert group.service_counts == {"checkout": 3, "api": 1}
    assert group.span_names == ["pay", "get"]
    assert store.group_count == 2
    (change,) = store.apply([occurrence(time_unix_nano=5_000)])
    assert not change.created
    assert store.get_group("00000000000000aa").count == 5
    assert store.group_count == 2


def test_severity_only_rises_and_category_fills_in_once(store: GroupStore) -> None:
    store.apply([occurrence(severity="high", category="unknown")])
    store.apply([occurrence(severity="low", category="timeout")])
    store.apply([occurrence(category="io")])
    group = store.get_group("00000000000000aa")
    assert group.severity == "high"
    assert group.category == "timeout"


def test_the_first_message_and_stacktrace_stay_and_are_redacted(tmp_path: Path) -> None:
    store = sqlite_group_store(
        tmp_path / "db", redact=lambda text: text.replace("hunter2", "[REDACTED]")
    )
    store.apply([occurrence(message="password hunter2", stacktrace="at hunter2")])
    store.apply([occurrence(message="another message")])
    group = store.get_group("00000000000000aa")
    assert group.message == "password [REDACTED]"
    assert group.stacktrace == "at [REDACTED]"
    store.close()


def test_a_resolved_group_seen_again_regresses(store: GroupStore) -> None:
    store.apply([occurrence()])
    assert set_status(store, ["00000000000000aa", "ffffffffffffffff"], "resolved") == 1
    (change,) = store.apply([occurrence()])
    assert change.regressed
    assert store.get_group("00000000000000aa").status == "regressed"
    (change,) = store.apply([occurrence()])
    assert not change.regressed
    set_status(store, ["00000000000000aa"], "dismissed")
    store.apply([occurrence()])
    assert store.get_group("00000000000000aa").status == "dismissed"


def test_per_group_lists_are_bounded(store: GroupStore) -> None:
    batch = [
        occurrence(
            service=f"svc{i}",
            span_name=f"span{i}",
            trace_id=f"{i:032x}",
            span_id=f"{i:016x}",
            time_unix_nano=i * groups.SAMPLE_SPACING_NANOS,
        )
        for i in range(1, 200)
    ]
    store.apply(batch)
    group = store.get_group("00000000000000aa")
    assert len(group.service_counts) == groups.MAX_SERVICES + 1
    assert group.service_counts[groups.OTHER_SERVICES] == 199 - groups.MAX_SERVICES
    assert sum(group.service_counts.values()) == 199
    assert len(group.span_names) == groups.MAX_SPAN_NAMES
    assert [s.time_unix_nano // groups.SAMPLE_SPACING_NANOS for s in group.samples] == list(
        range(195, 200)
    )


def test_a_full_sample_list_takes_new_samples_only_when_spaced(store: GroupStore) -> None:
    second = groups.SAMPLE_SPACING_NANOS // 10
    store.apply(
        [
            occurrence(trace_id=f"{i:032x}", span_id=f"{i:016x}", time_unix_nano=i * second)
            for i in range(1, 8)
        ]
    )
    assert [s.trace_id[-1] for s in store.get_group("00000000000000aa").samples] == list("12345")
    store.apply([occurrence(trace_id="f" * 32, span_id="f" * 16, time_unix_nano=16 * second)])
    samples = store.get_group("00000000000000aa").samples
    assert [s.trace_id[-1] for s in samples] == list("2345f")


def test_a_failed_transaction_changes_nothing(store: GroupStore) -> None:
    store.apply([occurrence()])
    store.connection.execute("PRAGMA query_only = ON")
    with pytest.raises(sqlite3.Error):
        store.apply([occurrence(), occurrence("00000000000000bb")])
    store.connection.execute("PRAGMA query_only = OFF")
    assert store.group_count == 1
    assert store.get_group("00000000000000aa").count == 1
    # What was merged in memory for the failed transaction is not counted again.
    store.apply([occurrence()])
    assert store.get_group("00000000000000aa").count == 2
    assert store.group_count == 1


def test_a_write_that_fails_halfway_keeps_none_of_it(store: GroupStore) -> None:
    store.apply([occurrence()])
    # The new group's row goes in; appending the known group's counts then fails.
    store.connection.execute(
        "CREATE TEMP TRIGGER refuse_log BEFORE INSERT ON group_log "
        "BEGIN SELECT RAISE(ABORT, 'no room'); END"
    )
    with pytest.raises(sqlite3.Error, match="no room"):
        store.apply([occurrence(), occurrence("00000000000000bb")])
    with pytest.raises(sqlite3.Error, match="no room"):
        store.apply([occurrence()])  # a write that is one statement fails whole too
    store.connection.execute("DROP TRIGGER refuse_log")
    assert store.group_count == 1
    assert store.get_group("00000000000000aa").count == 1
    with pytest.raises(GroupNotFound):
        store.get_group("00000000000000bb")


def test_recently_written_groups_merge_without_a_read_and_stay_bounded(tmp_path: Path) -> None:
    store = sqlite_group_store(tmp_path / "db", hot_groups=2)
    for _ in range(3):
        store.apply([occurrence(f"{i:016x}", time_unix_nano=i + 1) for i in range(5)])
    assert len(store._hot) == 2
    assert [store.get_group(f"{i:016x}").count for i in range(5)] == [3] * 5
    # A status set by an operator is not overwritten by the cached copy.
    set_status(store, ["0000000000000004"], "resolved")
    (change,) = store.apply([occurrence("0000000000000004")])
    assert change.regressed
    assert store.get_group("0000000000000004").status == "regressed"
    store.close()


def test_queries_filter_sort_and_page(store: GroupStore) -> None:
    store.apply(
        [
            occurrence("000000000000000a", count=5, time_unix_nano=10, severity="low"),
            occurrence("000000000000000b", count=1, time_unix_nano=30, service="api"),
            occurrence("000000000000000c", count=9, time_unix_nano=20, category="timeout"),
        ]
    )
    set_status(store, ["000000000000000c"], "dismissed")

    def fingerprints(query: GroupQuery, **page: int) -> list[str]:
        found, _ = store.list_groups(
            query, limit=page.get("limit", 10), offset=page.get("offset", 0)
        )
        return [group.fingerprint[-1] for group in found]

    assert fingerprints(GroupQuery()) == ["b", "c", "a"]
    assert fingerprints(GroupQuery(sort="count")) == ["c", "a", "b"]
    assert fingerprints(GroupQuery(sort="first_seen", ascending=True)) == ["a", "c", "b"]
    assert fingerprints(GroupQuery(sort="severity")) == ["b", "c", "a"]
    assert fingerprints(GroupQuery(statuses=("open",))) == ["b", "a"]
    assert fingerprints(GroupQuery(services=("api",))) == ["b"]
    assert fingerprints(GroupQuery(categories=("timeout",))) == ["c"]
    assert fingerprints(GroupQuery(severities=("low",))) == ["a"]
    assert fingerprints(GroupQuery(since_unix_nano=20)) == ["b", "c"]
    assert fingerprints(GroupQuery(), limit=2, offset=1) == ["c", "a"]
    assert store.list_groups(GroupQuery(statuses=("open",)), limit=1)[1] == 2
    assert [g.fingerprint[-1] for g in store.iter_groups(GroupQuery(sort="count"), chunk=1)] == [
        "c",
        "a",
        "b",
    ]
    with pytest.raises(ValueError, match="cannot sort by 'name'"):
        GroupQuery(sort="name")


def test_groups_are_found_by_unique_prefix(store: GroupStore) -> None:
    store.apply([occurrence("abcd100000000000"), occurrence("abcd200000000000")])
    assert store.get_group("abcd200000000000").fingerprint == "abcd200000000000"
    assert store.get_group("abcd1").fingerprint == "abcd100000000000"
    with pytest.raises(AmbiguousFingerprint):
        store.get_group("abcd")
    with pytest.raises(GroupNotFound):
        store.get_group("ffff")


def test_the_schema_is_versioned_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    sqlite_group_store(path).close()
    db = sqlite3.connect(path)
    assert db.execute(
        "SELECT version FROM faultlens_schema WHERE component = 'groups'"
    ).fetchone() == (SCHEMA_VERSION,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.execute("UPDATE faultlens_schema SET version = 99 WHERE component = 'groups'")
    db.commit()
    db.close()
    with pytest.raises(SchemaError, match="schema version 99, newer than this faultlens"):
        sqlite_group_store(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db"
    path.write_bytes(b"hello, this is not SQLite" * 100)
    with pytest.raises(SchemaError, match=r"cannot use .*not-a-db as the failure store"):
        sqlite_group_store(path)


def test_group_count_survives_reopening(tmp_path: Path) -> None:
    store = sqlite_group_store(tmp_path / "db")
    store.apply([occurrence(f"{i:016x}") for i in range(25)])
    store.close()
    reopened = sqlite_group_store(tmp_path / "db")
    assert reopened.group_count == 25
    reopened.close()


def log_rows(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        (rows,) = db.execute("SELECT COUNT(*) FROM group_log").fetchone()
        return int(rows)
    finally:
        db.close()


def test_counts_of_known_groups_go_through_the_log_and_survive_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "db"
    writer = sqlite_group_store(path, hot_groups=1)
    for _ in range(3):  # two groups through a one-group cache: rows are read back too
        writer.apply([occurrence("000000000000000a"), occurrence("000000000000000b", count=2)])
    assert log_rows(path) > 0  # acknowledged counts not yet in their rows
    # The writer dies without closing; another process opens the file.
    reopened = sqlite_group_store(path)
    assert reopened.get_group("000000000000000a").count == 3
    assert reopened.get_group("000000000000000b").count == 6
    assert log_rows(path) == 0
    reopened.close()


def test_every_read_and_operator_write_sees_the_logged_counts(store: GroupStore) -> None:
    store.apply([occurrence(count=1)])
    store.apply([occurrence(count=4, time_unix_nano=9_000)])
    assert store.list_groups(GroupQuery(sort="count"), limit=1)[0][0].count == 5
    assert store.count_groups(GroupQuery(since_unix_nano=9_000)) == 1
    store.apply([occurrence(count=2, time_unix_nano=9_500)])
    set_status(store, ["00000000000000aa"], "resolved")
    group = store.get_group("00000000000000aa")
    assert (group.count, group.last_seen, group.status) == (7, 9_500, "resolved")


def test_the_log_is_folded_when_it_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("faultlens_collector.store.sqlite.groups.FOLD_AFTER_ROWS", 4)
    path = tmp_path / "db"
    store = sqlite_group_store(path)
    store.apply([occurrence(f"{i:016x}") for i in range(3)])
    for _ in range(5):
        store.apply([occurrence(f"{i:016x}") for i in range(3)])
        # Folded before the write that finds 4 entries or more: at most 4 + 3 remain.
        assert log_rows(path) < 4 + 3
    assert [store.get_group(f"{i:016x}").count for i in range(3)] == [6] * 3
    store.close()


def test_a_read_does_not_wait_for_a_stuck_writer(store: GroupStore) -> None:
    store.apply([occurrence()])
    store.get_group("00000000000000aa")  # folded
    store.apply([occurrence()])
    with store._lock:  # a write that does not end
        started = time.monotonic()
        stale = store.get_group("00000000000000aa")
        waited = time.monotonic() - started
    assert waited < 2.0
    assert stale.count == 1  # the counts of the last fold
    assert store.get_group("00000000000000aa").count == 2


def test_a_write_to_more_groups_than_one_log_insert_takes_keeps_every_count(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db"
    store = sqlite_group_store(path)
    fingerprints = [f"{i:016x}" for i in range(250)]  # nearly three INSERTs of 90 rows
    store.apply([occurrence(fingerprint) for fingerprint in fingerprints])
    store.apply(
        [occurrence(fingerprint, count=i + 1) for i, fingerprint in enumerate(fingerprints)]
    )
    assert log_rows(path) == 250
    reopened = sqlite_group_store(path)  # as after a crash: the counts come from the log
    assert [reopened.get_group(fp).count for fp in fingerprints] == [i + 2 for i in range(250)]
    reopened.close()
    store.close()


@given(
    st.dictionaries(
        st.text(max_size=12), st.integers(min_value=0, max_value=groups.MAX_GROUP_COUNT)
    )
)
def test_service_counts_are_encoded_as_json_does(counts: dict[str, int]) -> None:
    encoded = encode_counts(counts)
    assert encoded == json.dumps(counts, separators=(",", ":"))
    assert json.loads(encoded) == counts
