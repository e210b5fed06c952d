"""Keyset pages of the groups list, in both database backends and over gRPC: a walk
through a list that changes while it is read (groups seen again, new groups) never
shows a group twice and never skips one that did not change during the walk — which
offset pages do; page tokens that are hostile, too long, stale or for another query
are refused with INVALID_ARGUMENT; an index serves every sort."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control import paging
from faultlens_collector.control.client import ControlClient, ControlError
from faultlens_collector.groups.model import Group
from faultlens_collector.groups.store import (
    SORT_KEYS,
    GroupKey,
    GroupQuery,
    GroupStore,
    group_key,
)
from faultlens_collector.store.sqlite.groups import keyset, order_by

from tests.processor_support import (
    failure_attributes,
    occurrence,
    running_processor,
    sqlite_group_store,
)
from tests.test_processor_overview import send

T0 = 1_700_000_000_000_000_000
SEVERITIES = ("low", "medium", "high", "critical")


@pytest.fixture(name="group_store", params=["sqlite", "postgres"])
def group_store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GroupStore]:
    """Each group store backend in turn (PostgreSQL: a fresh database of the test
    server, skipped when none can start)."""
    if request.param == "sqlite":
        store = sqlite_group_store(tmp_path / "groups.db")
        yield store
        store.close()
        return
    from faultlens_collector.store.postgres.database import PostgresDatabase

    from tests.postgres_support import fresh_database

    database = PostgresDatabase(fresh_database(request.getfixturevalue("postgres_cluster")))
    try:
        yield database.group_store()
    finally:
        database.close()


def fingerprint(index: int) -> str:
    return f"{index:016x}"


def fill(store: GroupStore, groups: int) -> None:
    """``groups`` groups with many ties: 10 last-seen times, counts 1-4, four severities."""
    store.apply(
        [
            occurrence(
                fingerprint(index),
                time_unix_nano=T0 + index % 10,
                count=1 + index % 4,
                severity=SEVERITIES[index % 4],
            )
            for index in range(groups)
        ]
    )


Page = Callable[[GroupQuery, int, "list[Group]"], "list[Group]"]


def keyset_page(store: GroupStore) -> Page:
    def page(query: GroupQuery, limit: int, shown: list[Group]) -> list[Group]:
        after = group_key(shown[-1], query.sort) if shown else None
        return store.list_groups(query, limit=limit, after=after, count=False)[0]

    return page


def offset_page(store: GroupStore) -> Page:
    def page(query: GroupQuery, limit: int, shown: list[Group]) -> list[Group]:
        return store.list_groups(query, limit=limit, offset=len(shown), count=False)[0]

    return page


class Churn:
    """Between pages: sees ``bumps`` existing groups again (later, so last seen and count
    grow) and creates ``new`` groups; remembers which groups changed."""

    def __init__(self, store: GroupStore, existing: int, bumps: int = 3, new: int = 2) -> None:
        self.store, self.existing, self.bumps, self.new = store, existing, bumps, new
        self.changed: set[str] = set()
        self.created = 0
        self.step = 0

    def __call__(self) -> None:
        self.step += 1
        touched = [
            fingerprint((self.step * 7919 + offset * 104729) % self.existing)
            for offset in range(self.bumps)
        ]
        created = [fingerprint(1_000_000 + self.created + offset) for offset in range(self.new)]
        self.created += self.new
        when = T0 + 1_000 * self.step
        self.store.apply(
            [occurrence(name, time_unix_nano=when) for name in touched]
            + [occurrence(name, time_unix_nano=when, severity="critical") for name in created]
        )
        self.changed.update(touched)


def walk(query: GroupQuery, page: Page, limit: int, between: Callable[[], None]) -> list[Group]:
    """Every page of ``query`` in turn, ``between`` called after each."""
    shown: list[Group] = []
    while True:
        found = page(query, limit, shown)
        shown += found
        if len(found) < limit:
            return shown
        between()


def check_walk(shown: list[Group], existing: int, changed: set[str]) -> None:
    """No group twice; every group that was there and did not change was shown."""
    listed = [group.fingerprint for group in shown]
    repeated = sorted({name for name in listed if listed.count(name) > 1})
    assert not repeated, f"shown twice: {repeated}"
    missed = {fingerprint(index) for index in range(existing)} - changed - set(listed)
    assert not missed, f"skipped: {sorted(missed)}"


QUERIES = [
    GroupQuery(sort=sort, ascending=ascending)
    for sort in SORT_KEYS
    for ascending in (False, True)
    # Ascending by last seen or count (or severity, then last seen), a group seen again
    # moves ahead of the walk (and shows again at its new place): a change, not a fault.
    if not (ascending and sort != "first_seen")
] + [GroupQuery(statuses=("open", "regressed")), GroupQuery(sort="count", statuses=("open",))]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: f"{q.sort}-{q.ascending}-{q.statuses}")
def test_a_walk_through_a_changing_list_neither_repeats_nor_skips(
    group_store: GroupStore, query: GroupQuery
) -> None:
    fill(group_store, 120)
    churn = Churn(group_store, 120)
    shown = walk(query, keyset_page(group_store), 9, churn)
    assert churn.step >= 10
    check_walk(shown, 120, churn.changed)
    keys = [group_key(group, query.sort) for group in shown]
    ordered = sorted(keys, key=lambda k: (k.values, k.fingerprint), reverse=not query.ascending)
    assert keys == ordered  # each page continues exactly where the last one ended


def test_offset_pages_of_the_same_walk_repeat_groups(group_store: GroupStore) -> None:
    """The control for the test above: the same churn breaks offset paging."""
    fill(group_store, 120)
    churn = Churn(group_store, 120)
    with pytest.raises(AssertionError, match="shown twice"):
        check_walk(walk(GroupQuery(), offset_page(group_store), 9, churn), 120, churn.changed)


def test_a_walk_while_another_thread_writes(group_store: GroupStore) -> None:
    fill(group_store, 300)
    churn = Churn(group_store, 300, bumps=5, new=3)
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            churn()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        shown = walk(GroupQuery(), keyset_page(group_store), 7, lambda: time.sleep(0.002))
    finally:
        stop.set()
        writer.join()
    assert churn.step > 0
    check_walk(shown, 300, churn.changed)


def test_a_place_that_does_not_fit_the_sort_is_refused(group_store: GroupStore) -> None:
    fill(group_store, 3)
    with pytest.raises(ValueError, match="sort values"):
        group_store.list_groups(GroupQuery(sort="severity"), limit=2, after=GroupKey((1,), "0"))


def test_an_index_serves_every_sort_and_its_keyset(tmp_path: Path) -> None:
    store = sqlite_group_store(tmp_path / "g.db")
    fill(store, 200)
    for sort in SORT_KEYS:
        for ascending in (False, True):
            query = GroupQuery(sort=sort, ascending=ascending)
            after = group_key(store.list_groups(query, limit=1)[0][0], sort)
            where, parameters = keyset(query, after, "", [])
            plan = store.connection.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM failure_groups {where} {order_by(query)} "
                "LIMIT 50",
                parameters,
            ).fetchall()
            details = " | ".join(row[-1] for row in plan)
            assert f"USING INDEX failure_groups_{'severity' if sort == 'severity' else sort}" in (
                details
            ), details
            assert "TEMP B-TREE" not in details, details  # read in index order: no sort
    store.close()


# tokens
def test_tokens_round_trip_and_are_opaque_and_small() -> None:
    group = Group(
        fingerprint="00000000000000ab",
        exception_type="E",
        message="m",
        stacktrace="",
        category="value",
        severity="high",
        status="open",
        count=3,
        handled_count=0,
        first_seen=5,
        last_seen=9,
    )
    for sort in SORT_KEYS:
        query = GroupQuery(sort=sort, statuses=("open",))
        token = paging.page_token(group, query)
        assert len(token) < 120
        assert paging.read_token(token, query) == group_key(group, sort)
    later = GroupQuery(since_unix_nano=T0 + 1)
    assert paging.read_token(paging.page_token(group, GroupQuery(since_unix_nano=T0)), later)


def forged(**payload: Any) -> str:
    text = json.dumps({"v": 1, "q": paging.query_digest(GroupQuery()), **payload})
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


HOSTILE = {
    "": None,  # no token: the first page
    "12": "malformed page_token",  # an offset of the old format
    "x" * 513: "longer than 512",
    "a b": "malformed page_token",
    "%00": "malformed page_token",
    "////": "malformed page_token",
    base64.urlsafe_b64encode(b"\xff\xfe").decode(): "malformed page_token",
    base64.urlsafe_b64encode(b"[1,2]").decode(): "malformed page_token",
    base64.urlsafe_b64encode(b"[" * 300 + b"]" * 300).decode()[:512]: "malformed page_token",
    forged(k=[1], f="ab", x=1): "malformed page_token",
    forged(k=[1]): "malformed page_token",
    forged(k=["1; DROP TABLE failure_groups"], f="ab"): "malformed page_token",
    forged(k=[True], f="ab"): "malformed page_token",
    forged(k=[1.5], f="ab"): "malformed page_token",
    forged(k=[2**63], f="ab"): "malformed page_token",
    forged(k=[1, 2], f="ab"): "malformed page_token",
    forged(k=[1], f=""): "malformed page_token",
    forged(k=[1], f="f" * 129): "malformed page_token",
    forged(k=[1], f=7): "malformed page_token",
    forged(k=[1], f="ab", v=2): "another version",
    forged(k=[1], f="ab", q="0" * 16): "does not match this query",
    forged(k=[1], f="' OR 1=1 --"): None,  # a fingerprint is a parameter: nothing matches
}


def test_hostile_tokens_are_refused_with_invalid_argument(tmp_path: Path) -> None:
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        send(processor.address, *(failure_attributes(fingerprint(index)) for index in range(3)))
        first = client.list_groups(control_pb2.ListGroupsRequest(limit=2))
        assert first.total == 3
        for token, problem in HOSTILE.items():
            request = control_pb2.ListGroupsRequest(page_token=token)
            if problem is None:
                client.list_groups(request)
                continue
            with pytest.raises(ControlError) as raised:
                client.list_groups(request)
            assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT, token
            assert problem in str(raised.value), (token, str(raised.value))
        # A token of one query used with another: another sort, direction or filter.
        for other in (
            control_pb2.ListGroupsRequest(sort=control_pb2.SORT_KEY_COUNT),
            control_pb2.ListGroupsRequest(ascending=True),
            control_pb2.ListGroupsRequest(filter=control_pb2.GroupFilter(statuses=["open"])),
        ):
            other.page_token = first.next_page_token
            with pytest.raises(ControlError, match="page_token does not match this query"):
                client.list_groups(other)
        rest = client.list_groups(
            control_pb2.ListGroupsRequest(limit=2, page_token=first.next_page_token)
        )
        assert [g.fingerprint for g in [*first.groups, *rest.groups]] == [
            fingerprint(2),
            fingerprint(1),
            fingerprint(0),
        ]
        assert rest.next_page_token == ""


def test_pages_over_grpc_while_failures_arrive(tmp_path: Path) -> None:
    """The real processor: OTLP failures (new groups, groups seen again) arrive while a
    client walks ListGroups five at a time."""
    with running_processor(tmp_path) as processor, ControlClient(processor.address) as client:
        send(processor.address, *(failure_attributes(fingerprint(i)) for i in range(60)))
        before = {
            g.fingerprint: (g.count, g.last_seen_unix_nano)
            for g in client.list_groups(control_pb2.ListGroupsRequest(limit=100)).groups
        }
        assert len(before) == 60
        stop = threading.Event()

        def ingest() -> None:
            step = 0
            while not stop.is_set():
                step += 1
                send(
                    processor.address,
                    failure_attributes(fingerprint(step * 13 % 60)),
                    failure_attributes(fingerprint(10_000 + step)),
                )

        writer = threading.Thread(target=ingest)
        writer.start()
        listed: list[str] = []
        token = ""
        try:
            while True:
                page = client.list_groups(
                    control_pb2.ListGroupsRequest(limit=5, page_token=token, skip_total=True)
                )
                listed += [g.fingerprint for g in page.groups]
                token = page.next_page_token
                if not token:
                    break
                time.sleep(0.01)
        finally:
            stop.set()
            writer.join()
        after = {
            g.fingerprint: (g.count, g.last_seen_unix_nano)
            for g in client.list_groups(control_pb2.ListGroupsRequest(limit=1000)).groups
        }
    unchanged = {name for name, seen in before.items() if after[name] == seen}
    assert len(listed) == len(set(listed)), "a group was shown twice"
    assert unchanged <= set(listed)
    assert len(unchanged) < 60  # the walk did overlap with writes
