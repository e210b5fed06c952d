"""The PostgreSQL store against a real server: the same groups as SQLite for the same
writes, exact counts and one creation per group under concurrent processors, the
fleet's decisions (halts, cooldowns, conditions, leased alerts and jobs), migrations,
passwords kept out of messages, and a server that goes away and comes back."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlens_collector.actions.records import HaltRecord, HookJob
from faultlens_collector.alerts.records import Alert
from faultlens_collector.groups.model import Dismissal
from faultlens_collector.groups.store import (
    AmbiguousFingerprint,
    GroupNotFound,
    GroupQuery,
    GroupStore,
    GroupUpdate,
    OperatorAction,
)
from faultlens_collector.store import SchemaError, StoreError, open_database
from faultlens_collector.store.postgres.actions import SCHEMA_VERSION as ACTIONS_SCHEMA_VERSION
from faultlens_collector.store.postgres.database import PostgresDatabase
from faultlens_collector.store.postgres.server import StoreUnavailable, redact_url
from faultlens_collector.store.sqlite.database import SQLiteDatabase
from faultlens_collector.store.sqlite.links import MIGRATIONS as LINK_MIGRATIONS

from tests.actions_support import facts
from tests.postgres_support import PASSWORD, PostgresCluster, fresh_database
from tests.processor_support import occurrence

SERVICES = ("checkout", "payments", "search")


@pytest.fixture
def database(postgres_cluster: PostgresCluster) -> Iterator[PostgresDatabase]:
    """A fresh database, opened once."""
    opened = PostgresDatabase(fresh_database(postgres_cluster))
    yield opened
    opened.close()


def random_batches(seed: int, batches: int = 60) -> list[list[Any]]:
    """Batches of occurrences over a few fingerprints: counts, times, services, samples,
    severities and categories that make every merge rule matter."""
    rng = random.Random(seed)
    made = []
    for _ in range(batches):
        batch = []
        for _ in range(rng.randint(1, 8)):
            fingerprint = f"{rng.randrange(6):016x}"
            batch.append(
                occurrence(
                    fingerprint,
                    count=rng.randint(1, 3),
                    time_unix_nano=rng.randrange(1, 10**12) * 1000,
                    service=rng.choice(SERVICES),
                    span_name=rng.choice(("a", "b", "c")),
                    handled=rng.choice((None, True, False)),
                    severity=rng.choice(("low", "medium", "high")),
                    category=rng.choice(("unknown", "value", "timeout")),
                    trace_id=rng.choice(("", f"{rng.randrange(1 << 64):032x}")),
                    span_id=f"{rng.randrange(1 << 32):016x}",
                    message=f"message {fingerprint}",
                )
            )
        made.append(batch)
    return made


def operator_step(store: GroupStore, step: int) -> None:
    """An operator's bulk change every few batches: resolve (then regressions), dismiss
    until a rate, categorize, tag and untag."""
    fingerprints = (f"{step % 6:016x}", f"{(step + 1) % 6:016x}")
    query = GroupQuery(fingerprints=fingerprints)
    updates = [
        GroupUpdate(status="resolved"),
        GroupUpdate(
            status="dismissed",
            dismissal=Dismissal(reason="noise", by="ops", at=1, max_per_hour=3),
        ),
        GroupUpdate(category="configuration", add_tags=("team-a", "p1")),
        GroupUpdate(severity="critical", remove_tags=("p1",), add_tags=("zz",)),
    ]
    store.update_groups(
        query, updates[step % len(updates)], OperatorAction(f"step{step}", "ops", "test")
    )


def test_groups_come_out_the_same_as_in_sqlite_for_the_same_writes(
    database: PostgresDatabase, tmp_path: Path
) -> None:
    sqlite = SQLiteDatabase(tmp_path / "same.db")
    stores: list[GroupStore] = [sqlite.group_store(), database.group_store()]
    try:
        for step, batch in enumerate(random_batches(7)):
            outcomes = []
            for store in stores:
                changes = store.apply(batch)
                outcomes.append(
                    [
                        (c.group.fingerprint, c.occurrences, c.created, c.regressed, c.reopened)
                        for c in changes
                    ]
                )
            assert outcomes[0] == outcomes[1], f"batch {step}"
            if step % 4 == 3:
                for store in stores:
                    operator_step(store, step)
        queries = [
            GroupQuery(),
            GroupQuery(statuses=("regressed", "open")),
            GroupQuery(services=("payments",), sort="count"),
            GroupQuery(tags=("team-a", "zz"), sort="severity", ascending=True),
            GroupQuery(categories=("configuration",), sort="first_seen"),
            GroupQuery(severities=("critical", "high"), since_unix_nano=5 * 10**14),
            # every filter of the shared builder (store/filters.py), each spelled
            # differently per backend: any of two services or tags, text (LIKE, its
            # wildcards taken literally), handled, fingerprints, the since times
            GroupQuery(services=SERVICES[:2]),
            GroupQuery(services=("checkout", "nowhere")),
            GroupQuery(tags=("p1", "nope")),
            GroupQuery(text="message 00000000"),
            GroupQuery(text="%_\\"),
            GroupQuery(handled="some", sort="last_seen", ascending=True),
            GroupQuery(handled="escaped", statuses=("open",)),
            GroupQuery(fingerprints=(f"{1:016x}", f"{3:016x}", "unknown")),
            GroupQuery(fingerprints=()),
            GroupQuery(first_seen_since=3 * 10**14, regressed_since=1),
            GroupQuery(exception_types=("ValueError", "KeyError"), categories=("value",)),
        ]
        # "any of", not "all of": a service nobody sent from takes nothing away
        for store in stores:
            alone = store.count_groups(GroupQuery(services=("checkout",)))
            assert alone > 0
            assert store.count_groups(GroupQuery(services=("checkout", "nowhere"))) == alone
        for query in queries:
            pages = [store.list_groups(query, limit=4, offset=1) for store in stores]
            assert pages[0] == pages[1], query
            assert [store.count_groups(query) for store in stores] == [pages[0][1]] * 2
            assert list(stores[0].iter_groups(query)) == list(stores[1].iter_groups(query))
        fingerprint = f"{2:016x}"
        assert stores[0].get_group(fingerprint) == stores[1].get_group(fingerprint)
        for store in stores:
            with pytest.raises(AmbiguousFingerprint):
                store.get_group("0000")
            with pytest.raises(GroupNotFound):
                store.get_group("ffff")
            assert store.missing(["ffffffffffffffff", fingerprint, "eeee"]) == [
                "ffffffffffffffff",
                "eeee",
            ]
        logs = [
            [(a.action, a.count) for a in store.operator_actions(fingerprint=fingerprint)]
            for store in stores
        ]
        assert logs[0] == logs[1]
        assert logs[0]  # the operator steps touched it
        assert stores[0].group_count == stores[1].group_count == 6
    finally:
        sqlite.close()


def test_dismissals_whose_end_passed_are_lifted(database: PostgresDatabase) -> None:
    store = database.group_store()
    store.apply([occurrence("00000000000000aa"), occurrence("00000000000000bb")])
    store.update_groups(
        GroupQuery(),
        GroupUpdate(status="dismissed", dismissal=Dismissal("x", "ops", 1, until=1000)),
        OperatorAction("dismiss", "ops", "test"),
    )
    assert store.expire_dismissals(now_unix_nano=999) == 0
    assert store.expire_dismissals(now_unix_nano=1000) == 2
    assert {g.status for g in store.iter_groups(GroupQuery())} == {"open"}


def concurrent_writers(
    url: str, writers: int, rounds: int, fingerprint_of: Callable[[int], str]
) -> tuple[Counter[str], Counter[str], PostgresDatabase, GroupStore]:
    """``writers`` processors (a database object each) applying, round after round and
    released together each round, the round's new fingerprint plus one shared group:
    how many transactions reported each group created, and the occurrences sent."""
    databases = [PostgresDatabase(url) for _ in range(writers)]
    stores = [db.group_store() for db in databases]
    created: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            for round_ in range(rounds):
                batch = [
                    occurrence(fingerprint_of(round_), count=1 + index),
                    occurrence("5a5a5a5a5a5a5a5a", count=1),
                ]
                barrier.wait(60)
                changes = stores[index].apply(batch)
                with lock:
                    for item in batch:
                        sent[item.fingerprint] += item.count
                    created.update(c.group.fingerprint for c in changes if c.created)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for db in databases[1:]:
        db.close()
    assert not errors, errors
    return created, sent, databases[0], stores[0]


def test_concurrent_processors_create_each_group_once_and_count_exactly(
    postgres_cluster: PostgresCluster,
) -> None:
    """Sentry's promise and more: N processors saving the same new failure at the same
    moment make one group, reported created once (so alerted once), with every
    occurrence counted. Fails when the row locks or the create race handling are
    removed (docs/scale-out.md says how that was checked)."""
    url = fresh_database(postgres_cluster)
    writers, rounds = 4, 30
    created, sent, database, store = concurrent_writers(url, writers, rounds, lambda r: f"{r:016x}")
    try:
        assert created == Counter(dict.fromkeys(sent, 1))
        groups = {group.fingerprint: group for group in store.iter_groups(GroupQuery())}
        assert {fp: group.count for fp, group in groups.items()} == dict(sent)
        assert groups["5a5a5a5a5a5a5a5a"].count == writers * rounds
        assert store.count_groups(GroupQuery()) == rounds + 1
    finally:
        database.close()


def test_processors_migrating_at_once_migrate_once_and_a_newer_schema_is_refused(
    postgres_cluster: PostgresCluster,
) -> None:
    url = fresh_database(postgres_cluster)
    databases = [PostgresDatabase(url) for _ in range(3)]
    errors: list[BaseException] = []

    def take(db: PostgresDatabase) -> None:
        try:
            db.group_store()
            db.action_store()
            db.link_store()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    with databases[0].connection() as connection:
        versions = dict(connection.execute("SELECT component, version FROM faultlens_schema"))
        assert versions == {
            "groups": 1,
            "actions": ACTIONS_SCHEMA_VERSION,
            "links": len(LINK_MIGRATIONS),
        }
        connection.execute("UPDATE faultlens_schema SET version = 99 WHERE component = 'groups'")
    for db in databases:
        db.close()
    newer = PostgresDatabase(url)
    with pytest.raises(SchemaError, match="schema version 99, newer than this faultlens"):
        newer.group_store()
    newer.close()


def test_the_password_never_shows(postgres_cluster: PostgresCluster) -> None:
    url = fresh_database(postgres_cluster)
    database = open_database(url)
    assert PASSWORD in url
    assert PASSWORD not in database.location
    assert database.location == redact_url(url)
    database.close()
    assert redact_url("postgresql://u:pw@h/db?sslmode=require&password=pw2") == (
        "postgresql://u@h/db?sslmode=require&password=***"
    )
    wrong = url.replace(PASSWORD, "not-" + PASSWORD)
    with pytest.raises(StoreError) as refused:
        open_database(wrong).group_store()
    assert "password authentication failed" in str(refused.value)
    assert PASSWORD not in str(refused.value)


def two_action_stores(cluster: PostgresCluster, **leases: float) -> tuple[Any, Any, list[Any]]:
    url = fresh_database(cluster)
    databases = [PostgresDatabase(url), PostgresDatabase(url)]
    first, second = (db.action_store(**leases) for db in databases)
    return first, second, databases


def test_the_fleet_starts_a_halt_once_and_follows_it(postgres_cluster: PostgresCluster) -> None:
    first, second, databases = two_action_stores(postgres_cluster)
    try:
        before = second.versions()
        key = (("service.name", "payments"),)
        mine = HaltRecord("h1", "storm", key, "5 failures", 1.0)
        theirs = HaltRecord("h2", "storm", key, "5 failures", 1.1)
        assert first.start_halt(mine) == mine
        assert second.start_halt(theirs) == mine  # one halt per rule and key
        assert second.versions()["halts"] > before["halts"]
        assert [h.id for h in second.active_halts()] == ["h1"]
        first.save_halt(HaltRecord("h1", "storm", key, "5 failures", 1.0, resumed_at=2.0))
        assert second.start_halt(theirs) == theirs  # lifted: a new halt may start
    finally:
        for db in databases:
            db.close()


def test_the_fleet_claims_a_cooldown_and_raises_a_condition_once(
    postgres_cluster: PostgresCluster,
) -> None:
    first, second, databases = two_action_stores(postgres_cluster)
    try:
        stores = [first, second] * 4
        claims: list[bool] = []
        raised: list[bool] = []
        barrier = threading.Barrier(len(stores))

        def contend(index: int) -> None:
            barrier.wait(60)
            store = stores[index]
            claims.append(
                store.claim_cooldown("fix", "fp", 1600.0, now=1000.0, job_id=f"job{index}")
            )
            raised.append(store.raise_condition("rule_match:r:fp", 1000.0))

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(claims) == [False] * 7 + [True]
        assert sorted(raised) == [False] * 7 + [True]
        with databases[0].connection() as connection:
            row = connection.execute("SELECT job_id FROM action_cooldowns").fetchone()
        assert row is not None
        assert first.claim_cooldown("fix", "fp", 1700.0, now=1100.0, job_id="other") is False
        # The job that holds the cooldown may run again (after a crash); after it, anyone.
        assert second.claim_cooldown("fix", "fp", 1600.0, now=1100.0, job_id=row[0]) is True
        assert first.cooldowns(1000.0) == {("fix", "fp"): 1600.0}
        assert first.claim_cooldown("fix", "fp", 2200.0, now=1600.0, job_id="later") is True
    finally:
        for db in databases:
            db.close()


def test_the_outbox_hands_each_alert_to_one_processor_until_its_lease_ends(
    postgres_cluster: PostgresCluster,
) -> None:
    first, second, databases = two_action_stores(postgres_cluster, alert_lease=1.0)
    try:
        alert = Alert("new_failure:fp", "new_failure", 1.0, "high", "new failure")
        assert first.add_alert(alert)
        assert not second.add_alert(alert)  # one alert per id in the fleet
        assert [s.alert.id for s in first.pending_alerts(10)] == ["new_failure:fp"]
        assert second.pending_alerts(10) == []  # first holds it
        assert [s.alert.id for s in first.pending_alerts(10)] == ["new_failure:fp"]  # still
        time.sleep(1.3)  # first died: its lease ends
        (taken,) = second.pending_alerts(10)
        second.mark_alerts_sent([taken.seq], 5.0)
        assert first.pending_alerts(10) == second.pending_alerts(10) == []
        other = Alert("halt:h", "halt", 2.0, "critical", "halted")
        assert second.add_alert(other)
        assert [s.alert.id for s in second.pending_alerts(10)] == ["halt:h"]
        second.release_alerts()  # stopping: handed on at once
        assert [s.alert.id for s in first.pending_alerts(10)] == ["halt:h"]
    finally:
        for db in databases:
            db.close()


def test_the_job_queue_hands_a_dead_processors_jobs_to_another(
    postgres_cluster: PostgresCluster,
) -> None:
    first, second, databases = two_action_stores(postgres_cluster, job_lease=1.0)
    try:
        job = HookJob("j1", "restart", "rule", "fix", facts(), 10.0)
        first.save_job(job)
        assert second.pending_jobs() == []
        time.sleep(0.6)
        first.hold_jobs()  # alive: renewed
        time.sleep(0.6)
        assert second.pending_jobs() == []
        assert [j.id for j in first.pending_jobs()] == ["j1"]
        time.sleep(1.3)  # first stopped renewing (it died)
        assert [j.id for j in second.pending_jobs()] == ["j1"]
        assert first.pending_jobs() == []
        second.release_jobs()
        assert [j.id for j in first.pending_jobs()] == ["j1"]
        first.delete_job("j1")
        assert second.pending_jobs() == []
    finally:
        for db in databases:
            db.close()


def test_a_server_that_goes_away_is_unavailable_then_used_again_without_a_restart(
    postgres_cluster: PostgresCluster,
) -> None:
    database = PostgresDatabase(fresh_database(postgres_cluster))
    try:
        store = database.group_store()
        store.apply([occurrence("00000000000000aa")])
        postgres_cluster.stop()
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="is unavailable") as refused:
                store.apply([occurrence("00000000000000aa")])
            assert time.monotonic() - started < 30
            assert PASSWORD not in str(refused.value)
        finally:
            postgres_cluster.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                store.apply([occurrence("00000000000000aa", count=2)])
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store did not come back"
                time.sleep(0.2)
        assert store.get_group("00000000000000aa").count == 3  # nothing kept of the refusal
    finally:
        database.close()
