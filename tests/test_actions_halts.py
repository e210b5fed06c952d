"""Halt rules: consecutive and windowed counting, persistence, resume, the change feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions_support import (
    FP,
    FP2,
    Clock,
    engine_with,
    facts,
    python_hook,
    sqlite_action_store,
    wait_until,
)
from faultlens.shared import covers, make_key
from faultlens_collector.actions import ActionEngine, Alert, HaltChange
from faultlens_collector.actions.broadcast import Subscription
from faultlens_collector.actions.store import ActionStore

CONSECUTIVE = {"name": "service-down", "key": ["service.name"], "consecutive": 3}
WINDOWED = {"name": "burst", "key": ["service.name"], "count": 3, "window": "10s"}


class Harness:
    def __init__(
        self, halts: list[dict[str, Any]], store: ActionStore | None = None, **extra: Any
    ) -> None:
        self.clock = Clock()
        self.engine: ActionEngine = engine_with(
            {"engine": {"tick_interval": "1h"}, "halts": halts, **extra}, store, clock=self.clock
        )
        self.alerts = self.engine.subscribe_alerts()
        self.engine.start()

    def fail(self, count: int = 1, **group: Any) -> None:
        for _ in range(count):
            self.engine.on_group_updated(facts(**group))

    def halt_alerts(self) -> list[Alert]:
        found = []
        while (alert := self.alerts.get(timeout=0)) is not None:
            if alert.kind == "halt":
                found.append(alert)
        return found


@pytest.fixture
def harnesses() -> Iterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        harness.engine.stop(timeout=2)


def make(made: list[Harness], halts: list[dict[str, Any]], **options: Any) -> Harness:
    harness = Harness(halts, **options)
    made.append(harness)
    return harness


def test_consecutive_failures_halt_the_key(harnesses: list[Harness]) -> None:
    h = make(harnesses, [CONSECUTIVE])
    h.fail(2)
    h.fail(2, service="orders")
    assert h.engine.halts_in_force() == []
    h.fail(1, fingerprint=FP2, exception_type="KeyError", message="'sku'")
    (halt,) = h.engine.halts_in_force()
    assert halt.rule == "service-down"
    assert halt.attributes == {"service.name": "payments"}
    assert halt.reason == "3 consecutive failures (last: KeyError: 'sku')"
    assert halt.since == h.clock()
    assert halt.fingerprints == (FP, FP2)
    (alert,) = h.halt_alerts()
    assert alert.severity == "critical"
    assert alert.attributes["faultlens.alert.kind"] == "halt"
    assert alert.attributes["faultlens.halt.id"] == halt.id
    assert alert.attributes["faultlens.halt.rule"] == "service-down"
    assert json.loads(str(alert.attributes["faultlens.halt.key"])) == {"service.name": "payments"}
    assert alert.attributes["service.name"] == "payments"
    assert alert.attributes["failure.fingerprint"] == FP2  # the failure that tripped it
    # A halted key does not count any further, nor alert again.
    h.fail(10)
    assert len(h.engine.halts_in_force()) == 1
    assert h.halt_alerts() == []
    h.fail(1, service="orders")  # the third for orders
    assert {h.attributes["service.name"] for h in h.engine.halts_in_force()} == {
        "payments",
        "orders",
    }


def test_a_success_resets_the_streak(harnesses: list[Harness]) -> None:
    h = make(harnesses, [CONSECUTIVE])
    h.fail(2)
    h.engine.on_success({"service.name": "orders"})  # another key: no effect
    h.engine.on_success({"span.name": "charge"})  # lacks the key field: no effect
    h.fail(1)
    assert len(h.engine.halts_in_force()) == 1
    h.engine.resume(key={"service.name": "payments"}, by="ops")
    h.fail(2)
    h.engine.on_success({"service.name": "payments", "span.name": "charge"})
    h.fail(2)
    assert h.engine.halts_in_force() == []
    h.fail(1)
    assert len(h.engine.halts_in_force()) == 1


def test_a_quiet_period_resets_the_streak(harnesses: list[Harness]) -> None:
    h = make(harnesses, [{**CONSECUTIVE, "reset_window": "5m"}])
    h.fail(2)
    h.clock.advance(301)
    h.fail(2)
    assert h.engine.halts_in_force() == []
    h.clock.advance(299)
    h.fail(1)
    assert len(h.engine.halts_in_force()) == 1


def test_aggregated_occurrences_count_fully(harnesses: list[Harness]) -> None:
    h = make(harnesses, [CONSECUTIVE])
    h.engine.on_group_updated(facts(count=3), occurrences=3)
    assert len(h.engine.halts_in_force()) == 1


def test_n_within_a_window(harnesses: list[Harness]) -> None:
    h = make(harnesses, [WINDOWED])
    h.fail(1)
    h.clock.advance(5)
    h.fail(1)
    h.engine.on_success({"service.name": "payments"})  # successes play no part here
    h.clock.advance(6)
    h.fail(1)  # 0, 5, 11: the first is out of the window
    assert h.engine.halts_in_force() == []
    h.clock.advance(1)
    h.fail(1)  # 5, 11, 12
    (halt,) = h.engine.halts_in_force()
    assert halt.reason.startswith("3 failures within 10 s")


def test_keys_on_any_attribute_and_filters(harnesses: list[Harness]) -> None:
    rule = {
        "name": "strategy",
        "key": ["strategy", "symbol"],
        "consecutive": 2,
        "category": "dependency",
    }
    h = make(harnesses, [rule])
    vwap = {"strategy": "VWAP", "symbol": "AAPL"}
    h.fail(5, category="dependency", attributes={"strategy": "VWAP"})  # lacks symbol
    h.fail(5, category="value", attributes=vwap)  # filtered out
    assert h.engine.halts_in_force() == []
    h.fail(2, category="dependency", attributes=vwap)
    (halt,) = h.engine.halts_in_force()
    assert halt.attributes == {"strategy": "VWAP", "symbol": "AAPL"}
    assert halt.key == make_key(vwap)


def test_the_halt_reason_is_redacted(harnesses: list[Harness]) -> None:
    h = make(harnesses, [CONSECUTIVE])
    h.fail(3, message="cannot log in with password=hunter2")
    (halt,) = h.engine.halts_in_force()
    assert "hunter2" not in halt.reason
    assert "password=[REDACTED]" in halt.reason
    assert "hunter2" not in h.engine.store.active_halts()[0].reason


def test_dismissed_groups_still_count(harnesses: list[Harness]) -> None:
    h = make(harnesses, [CONSECUTIVE])
    h.fail(3, status="dismissed")
    assert len(h.engine.halts_in_force()) == 1


def test_halt_hooks_run_with_the_halt(harnesses: list[Harness], tmp_path: Path) -> None:
    out = tmp_path / "halt.json"
    code = f"""
        import json, os, sys
        json.dump({{"stdin": json.load(sys.stdin), "key": os.environ["FAULTLENS_HALT_KEY"],
                   "purpose": os.environ["FAULTLENS_PURPOSE"]}}, open({str(out)!r}, "w"))
    """
    h = make(
        harnesses,
        [{**CONSECUTIVE, "hooks": ["page"]}],
        hooks={"page": {"command": python_hook(code), "cooldown": "1h"}},
    )
    h.fail(3)
    wait_until(out.exists)
    wait_until(lambda: out.read_text().endswith("}"))
    seen = json.loads(out.read_text())
    (halt,) = h.engine.halts_in_force()
    assert seen["purpose"] == "halt"
    assert json.loads(seen["key"]) == {"service.name": "payments"}
    assert seen["stdin"]["halt"]["id"] == halt.id
    assert seen["stdin"]["halt"]["key"] == {"service.name": "payments"}
    assert seen["stdin"]["failure"]["fingerprint"] == FP
    wait_until(h.engine.audit)
    (record,) = h.engine.audit()
    assert (record.purpose, record.rule, record.outcome) == ("halt", "service-down", "ok")


def test_halts_persist_until_resumed(harnesses: list[Harness], tmp_path: Path) -> None:
    path = tmp_path / "actions.db"
    first = make(harnesses, [CONSECUTIVE], store=sqlite_action_store(path))
    first.fail(3)
    (halt,) = first.engine.halts_in_force()
    first.engine.stop()
    harnesses.remove(first)

    second = make(harnesses, [CONSECUTIVE], store=sqlite_action_store(path))
    assert second.engine.halts_in_force() == [halt]
    second.clock.advance(86400)
    second.engine.tick()
    second.engine.on_success({"service.name": "payments"})
    assert second.engine.halts_in_force() == [halt]  # neither time nor success lifts it
    second.fail(5)
    assert second.halt_alerts() == []
    (resumed,) = second.engine.resume(halt_id=halt.id, by="alice")
    assert (resumed.resumed_by, resumed.resumed_at) == ("alice", second.clock())
    assert second.engine.halts_in_force() == []
    second.engine.stop()
    harnesses.remove(second)

    third = make(harnesses, [CONSECUTIVE], store=sqlite_action_store(path))
    assert third.engine.halts_in_force() == []
    assert third.engine.store.halt_history()[0] == resumed
    third.fail(2)
    assert third.engine.halts_in_force() == []  # the streak started afresh
    third.fail(1)
    assert len(third.engine.halts_in_force()) == 1


def test_resume_needs_a_target(harnesses: list[Harness]) -> None:
    h = make(harnesses, [CONSECUTIVE])
    with pytest.raises(ValueError, match="halt id or a key"):
        h.engine.resume(by="ops")
    assert h.engine.resume(halt_id="nope", by="ops") == []


def test_manual_halts(harnesses: list[Harness]) -> None:
    h = make(harnesses, [])
    halt = h.engine.halt({"service.name": "payments"}, "deploy freeze", by="alice")
    assert halt.rule == "manual"
    assert halt.reason == "deploy freeze (by alice)"
    assert h.engine.halt({"service.name": "payments"}, "again", by="bob") == halt
    (alert,) = h.halt_alerts()
    assert alert.attributes["faultlens.halt.id"] == halt.id
    assert h.engine.resume(key={"service.name": "payments"}, by="alice")[0].id == halt.id


def test_halt_for_covers_wider_keys_and_converts_for_sdk_guards(harnesses: list[Harness]) -> None:
    h = make(harnesses, [CONSECUTIVE])
    h.fail(3)
    wider = {"service.name": "payments", "span.name": "charge"}
    halt = h.engine.halts.halt_for(wider)
    assert halt is not None
    assert h.engine.halts.halt_for({"service.name": "orders"}) is None
    sdk_halt = halt.to_sdk_halt()
    assert sdk_halt.source == "faultlens:service-down"
    assert covers(sdk_halt.key, make_key(wider))
    assert sdk_halt.since.timestamp() == halt.since
    assert "payments" in str(sdk_halt.error())


def changes(subscription: Subscription[HaltChange]) -> list[HaltChange]:
    found = []
    while (change := subscription.get(timeout=0)) is not None:
        found.append(change)
    return found


def test_the_change_feed(harnesses: list[Harness]) -> None:
    h = make(harnesses, [CONSECUTIVE])
    early = h.engine.subscribe_halts()
    (snapshot,) = changes(early)
    assert (snapshot.kind, snapshot.halts) == ("snapshot", ())
    h.fail(3)
    (halt,) = h.engine.halts_in_force()
    late = h.engine.subscribe_halts()
    (halted,) = changes(early)
    assert (halted.kind, halted.halts) == ("halted", (halt,))
    (late_snapshot,) = changes(late)
    assert (late_snapshot.kind, late_snapshot.halts) == ("snapshot", (halt,))
    assert late_snapshot.version == halted.version
    h.engine.resume(halt_id=halt.id, by="ops")
    (resumed,) = changes(early)
    assert resumed.kind == "resumed"
    assert resumed.halts[0].resumed_by == "ops"
    assert resumed.version == halted.version + 1
    assert changes(late)[0].kind == "resumed"
    late.close()
    assert late.get(timeout=0) is None
    assert len(h.engine.halts.broadcast) == 1


def test_a_slow_subscriber_gets_a_fresh_snapshot_after_overflowing(
    harnesses: list[Harness],
) -> None:
    h = make(harnesses, [CONSECUTIVE])
    h.engine.halts.broadcast.max_pending = 3
    slow = h.engine.subscribe_halts()  # holds the first snapshot
    for index in range(5):
        h.fail(3, service=f"svc-{index}")
    change = slow.get(timeout=1)
    assert change is not None
    assert change.kind == "snapshot"
    assert len(change.halts) == 5
    assert slow.lost > 0


def test_waiting_for_a_change(harnesses: list[Harness]) -> None:
    import threading

    h = make(harnesses, [CONSECUTIVE])
    subscription = h.engine.subscribe_halts()
    subscription.get(timeout=0)
    timer = threading.Timer(0.1, lambda: h.fail(3))
    timer.start()
    change = subscription.get(timeout=5)
    timer.join()
    assert change is not None
    assert change.kind == "halted"
    assert subscription.get(timeout=0.01) is None
