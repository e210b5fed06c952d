"""Durable group links (causes/store.py, store/sqlite/links.py)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from faultlens_collector.causes.links import LinkChange
from faultlens_collector.causes.store import LinkStore, StoredLink
from faultlens_collector.store import SchemaError, open_database
from faultlens_collector.store.sqlite.links import COMPONENT, MIGRATIONS


def link_store_at(path: Path) -> LinkStore:
    return open_database(path).link_store()


def change(traces: int, occurrences: int, first: int = 10, last: int = 20) -> LinkChange:
    return LinkChange(traces, occurrences, first, last)


def test_links_add_up_and_survive_a_restart(tmp_path: Path) -> None:
    store = link_store_at(tmp_path / "f.db")
    store.apply({("root", "a"): change(1, 2), ("root", "b"): change(1, 1)})
    store.apply({("root", "a"): change(2, 3, first=5, last=15)})
    store = link_store_at(tmp_path / "f.db")
    assert store.all_links() == [
        StoredLink("root", "a", 3, 5, 5, 20),
        StoredLink("root", "b", 1, 1, 10, 20),
    ]
    version = sqlite3.connect(tmp_path / "f.db").execute(
        "SELECT version FROM faultlens_schema WHERE component = ?", (COMPONENT,)
    )
    assert version.fetchone() == (len(MIGRATIONS),)


def test_a_late_arrival_moves_a_link(tmp_path: Path) -> None:
    store = link_store_at(tmp_path / "f.db")
    store.apply({("cart", "checkout"): change(1, 1)})
    before = store.version
    store.apply({("cart", "checkout"): change(-1, -1), ("pricing", "checkout"): change(1, 1)})
    assert store.version == before + 1
    assert [(link.cause, link.symptom) for link in store.all_links()] == [("pricing", "checkout")]


def test_links_of_and_resets(tmp_path: Path) -> None:
    store = link_store_at(tmp_path / "f.db")
    store.apply({("p", "c"): change(1, 1), ("p", "d"): change(1, 1), ("x", "y"): change(1, 1)})
    assert {(link.cause, link.symptom) for link in store.links_of(["c"])} == {("p", "c")}
    assert {(link.cause, link.symptom) for link in store.links_of(["p", "c"])} == {
        ("p", "c"),
        ("p", "d"),
    }
    assert store.reset({"c": 42}) == 1
    assert store.resets(["c", "d"]) == {"c": 42}
    assert store.reset({"c": 50}) == 0
    assert store.resets() == {"c": 50}
    assert {(link.cause, link.symptom) for link in store.all_links()} == {("p", "d"), ("x", "y")}
    many = [f"{n:016x}" for n in range(1200)]  # more than one IN (...) list
    store.apply({("p", fingerprint): change(1, 1) for fingerprint in many})
    assert len(store.links_of(many)) == 1200


def test_processors_sharing_a_database_add_up(tmp_path: Path) -> None:
    stores = [link_store_at(tmp_path / "f.db") for _ in range(3)]

    def write(store: LinkStore) -> None:
        for _ in range(50):
            store.apply({("r", "s"): change(1, 2)})

    threads = [threading.Thread(target=write, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].all_links()[0].traces == 150
    assert stores[0].all_links()[0].occurrences == 300


def test_an_unusable_file(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_text("not a database" * 100)
    with pytest.raises(SchemaError, match="link store"):
        link_store_at(tmp_path / "bad.db")
