"""Durable group links (causes/store.py) on both backends: SQLite
(store/sqlite/links.py) and PostgreSQL (store/postgres/links.py, a real server)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from faultlens_collector.causes.links import LinkChange
from faultlens_collector.causes.store import LinkStore, StoredLink
from faultlens_collector.store import Database, SchemaError, open_database
from faultlens_collector.store.sqlite.links import COMPONENT, MIGRATIONS

from tests.postgres_support import fresh_database

#: Opens the database of one test (each call: a new database object on the same data,
#: as a processor that restarts, or another processor of the fleet).
Opener = Callable[[], Database]


@pytest.fixture(params=["sqlite", "postgres"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "sqlite":
        location = str(tmp_path / "f.db")
    else:
        location = fresh_database(request.getfixturevalue("postgres_cluster"))
    opened: list[Database] = []

    def opener() -> Database:
        opened.append(open_database(location))
        return opened[-1]

    opener.location = location  # type: ignore[attr-defined]
    yield opener
    for database in opened:
        database.close()


def schema_version(location: str) -> object:
    query = "SELECT version FROM faultlens_schema WHERE component = %s"
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location) as connection:
            return connection.execute(query, (COMPONENT,)).fetchone()
    return sqlite3.connect(location).execute(query.replace("%s", "?"), (COMPONENT,)).fetchone()


def change(traces: int, occurrences: int, first: int = 10, last: int = 20) -> LinkChange:
    return LinkChange(traces, occurrences, first, last)


def test_links_add_up_and_survive_a_restart(reopen: Opener) -> None:
    store = reopen().link_store()
    store.apply({("root", "a"): change(1, 2), ("root", "b"): change(1, 1)})
    store.apply({("root", "a"): change(2, 3, first=5, last=15)})
    store = reopen().link_store()
    assert store.all_links() == [
        StoredLink("root", "a", 3, 5, 5, 20),
        StoredLink("root", "b", 1, 1, 10, 20),
    ]
    assert schema_version(reopen.location) == (len(MIGRATIONS),)  # type: ignore[attr-defined]


def test_a_late_arrival_moves_a_link(reopen: Opener) -> None:
    store = reopen().link_store()
    store.apply({("cart", "checkout"): change(1, 1)})
    before = store.version
    store.apply({("cart", "checkout"): change(-1, -1), ("pricing", "checkout"): change(1, 1)})
    assert store.version == before + 1
    assert [(link.cause, link.symptom) for link in store.all_links()] == [("pricing", "checkout")]


def test_links_of_and_resets(reopen: Opener) -> None:
    store = reopen().link_store()
    store.apply({("p", "c"): change(1, 1), ("p", "d"): change(1, 1), ("x", "y"): change(1, 1)})
    assert {(link.cause, link.symptom) for link in store.links_of(["c"])} == {("p", "c")}
    assert {(link.cause, link.symptom) for link in store.links_of(["p", "c"])} == {
        ("p", "c"),
        ("p", "d"),
    }
    assert store.links_of([]) == []
    assert store.reset({"c": 42}) == 1
    assert store.resets(["c", "d"]) == {"c": 42}
    assert store.reset({"c": 50}) == 0
    assert store.resets() == {"c": 50}
    assert store.reset({}) == 0
    assert {(link.cause, link.symptom) for link in store.all_links()} == {("p", "d"), ("x", "y")}
    many = [f"{n:016x}" for n in range(1200)]  # more than one IN (...) list in SQLite
    store.apply({("p", fingerprint): change(1, 1) for fingerprint in many})
    assert len(store.links_of(many)) == 1200


def test_processors_sharing_a_database_add_up(reopen: Opener) -> None:
    stores = [reopen().link_store() for _ in range(3)]

    def write(store: LinkStore, reverse: bool) -> None:
        pairs = [("r", "s"), ("r", "t"), ("q", "s")]
        for _ in range(50):  # several rows a batch, in both orders: no deadlock
            ordered = pairs[::-1] if reverse else pairs
            store.apply({pair: change(1, 2) for pair in ordered})

    threads = [
        threading.Thread(target=write, args=(store, index % 2 == 1))
        for index, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    links = stores[0].all_links()
    assert [(link.cause, link.symptom, link.traces, link.occurrences) for link in links] == [
        ("q", "s", 150, 300),
        ("r", "s", 150, 300),
        ("r", "t", 150, 300),
    ]


def test_each_store_is_taken_once(reopen: Opener) -> None:
    database = reopen()
    database.link_store()
    with pytest.raises(Exception, match="taken already"):
        database.link_store()


def test_an_unusable_file(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_text("not a database" * 100)
    with pytest.raises(SchemaError, match="link store"):
        open_database(tmp_path / "bad.db").link_store()
