"""Alert delivery through the official OTLP log exporter to a real OTLP/gRPC receiver."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from actions_support import FP, Clock, engine_with, facts, sqlite_action_store, wait_until
from faultlens_collector.actions import ActionEngine, MemoryActionStore
from faultlens_collector.actions.store import ActionStore
from faultlens_collector.alerts.sender import otlp_log_exporter
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from otlp_receiver import OtlpReceiver, any_value, attributes

FAST = {"initial_backoff": 0.05, "max_backoff": 0.2, "idle_wait": 0.2}


def engine(endpoint: str, store: ActionStore | None = None, **data: Any) -> ActionEngine:
    """An engine sending alerts to ``endpoint`` (plaintext, short timeouts)."""
    return engine_with(
        {"engine": {"tick_interval": "1h"}, **data},
        store,
        clock=Clock(),
        alert_exporter=otlp_log_exporter(endpoint, insecure=True, timeout=1.0),
        sender_options=FAST,
    )


def received(receiver: OtlpReceiver) -> list[tuple[dict[str, Any], LogRecord]]:
    return receiver.log_records()


def alert_ids(receiver: OtlpReceiver) -> list[str]:
    return [attributes(record.attributes)["faultlens.alert.id"] for _, record in received(receiver)]


def new_groups(e: ActionEngine, count: int, start: int = 0) -> list[str]:
    fingerprints = [f"{index:016x}" for index in range(start, start + count)]
    for fingerprint in fingerprints:
        e.on_group_updated(facts(fingerprint=fingerprint), is_new=True)
    return [f"new_failure:{fingerprint}" for fingerprint in fingerprints]


def test_an_alert_arrives_as_an_otlp_log_record() -> None:
    with OtlpReceiver() as receiver:
        e = engine(receiver.endpoint)
        e.start()
        try:
            e.on_group_updated(facts(severity="high"), is_new=True)
            assert receiver.wait_for(lambda: len(received(receiver)) == 1)
        finally:
            e.stop()
    ((resource, record),) = received(receiver)
    assert resource["service.name"] == "faultlens-processor"
    assert record.event_name == "faultlens.alert"
    assert record.severity_number == 17  # ERROR for a high-severity group
    assert record.severity_text == "ERROR"
    assert (
        any_value(record.body) == f"new failure: ValueError: invalid amount -3 in payments [{FP}]"
    )
    assert record.time_unix_nano == int(1_700_000_000.0 * 1e9)
    attrs = attributes(record.attributes)
    assert attrs["event.name"] == "faultlens.alert"
    assert attrs["faultlens.alert.kind"] == "new_failure"
    assert attrs["faultlens.alert.id"] == f"new_failure:{FP}"
    assert attrs["failure.fingerprint"] == FP
    assert attrs["failure.category"] == "value"
    assert attrs["failure.severity"] == "high"
    assert attrs["failure.count"] == 1
    assert attrs["exception.type"] == "ValueError"
    assert attrs["service.name"] == "payments"
    scope = receiver.requests["logs"][0].resource_logs[0].scope_logs[0].scope
    assert scope.name == "faultlens.alerts"


def test_nothing_is_lost_while_the_next_hop_is_down(tmp_path: Path) -> None:
    first = OtlpReceiver()
    port = first.port
    with first:
        e = engine(first.endpoint, sqlite_action_store(tmp_path / "a.db"))
        e.start()
        try:
            sent_before = new_groups(e, 3)
            assert first.wait_for(lambda: len(received(first)) == 3)
            wait_until(lambda: e.store.pending_alerts(10) == [])  # acknowledged
            assert alert_ids(first) == sent_before
        except BaseException:
            e.stop()
            raise
    try:
        # The receiver is gone: alerts wait in the outbox while the sender retries.
        expected = new_groups(e, 5, start=100)
        assert e.sender is not None
        wait_until(lambda: e.sender.failures >= 2)
        assert [s.alert.id for s in e.store.pending_alerts(100)] == expected
        with OtlpReceiver(port) as back:
            assert back.wait_for(lambda: len(received(back)) >= 5, timeout=15)
            more = new_groups(e, 2, start=200)
            assert back.wait_for(lambda: len(received(back)) >= 7, timeout=10)
            wait_until(lambda: e.store.pending_alerts(100) == [])
            time.sleep(0.3)  # nothing else trickles in
            ids = alert_ids(back)
    finally:
        e.stop()
    assert Counter(ids) == Counter(expected + more)  # each exactly once
    assert ids[:5] == expected  # in the order they were raised


def test_pending_alerts_survive_a_restart_and_sent_ones_are_not_repeated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    with OtlpReceiver() as receiver:
        port = receiver.port
    # Nobody listens: raise alerts, stop (as on a crash, they stay in the outbox).
    e = engine(f"127.0.0.1:{port}", sqlite_action_store(path))
    e.start()
    expected = new_groups(e, 4)
    e.stop(timeout=1)
    with OtlpReceiver(port) as receiver:
        again = engine(receiver.endpoint, sqlite_action_store(path))
        again.start()
        try:
            assert receiver.wait_for(lambda: len(received(receiver)) == 4, timeout=15)
            wait_until(lambda: again.store.pending_alerts(10) == [])
        finally:
            again.stop()
        third = engine(receiver.endpoint, sqlite_action_store(path))
        third.start()
        try:
            third.on_group_updated(facts(fingerprint="0000000000000000"), is_new=True)
            time.sleep(0.5)  # the sender had time to send anything left over
        finally:
            third.stop()
        ids = alert_ids(receiver)
    assert Counter(ids) == Counter(expected)  # sent once; the repeated new_failure refused


class LostAcknowledgement(LogRecordExporter):
    """Delivers the first batch but reports failure, as when the answer is lost."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner
        self.calls = 0

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.calls += 1
        result = self.inner.export(batch)
        return LogRecordExportResult.FAILURE if self.calls == 1 else result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_a_lost_acknowledgement_repeats_the_alert_with_the_same_id() -> None:
    """At-least-once: the duplicate carries the same faultlens.alert.id."""
    with OtlpReceiver() as receiver:
        exporter = LostAcknowledgement(otlp_log_exporter(receiver.endpoint, insecure=True))
        e = engine_with({}, clock=Clock(), alert_exporter=exporter, sender_options=FAST)
        e.start()
        try:
            e.on_group_updated(facts(), is_new=True)
            assert receiver.wait_for(lambda: len(received(receiver)) == 2)
            wait_until(lambda: e.store.pending_alerts(10) == [])
        finally:
            e.stop()
    assert alert_ids(receiver) == [f"new_failure:{FP}"] * 2


class Refuses(LogRecordExporter):
    """Raises on any batch holding a given alert id; exports the rest."""

    def __init__(self, inner: LogRecordExporter, poison: str) -> None:
        self.inner = inner
        self.poison = poison

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        if any(r.log_record.attributes["faultlens.alert.id"] == self.poison for r in batch):
            raise TypeError("cannot encode this record")
        return self.inner.export(batch)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_an_alert_that_cannot_be_exported_does_not_block_the_others() -> None:
    store = MemoryActionStore()
    ids = [f"new_failure:{index:016x}" for index in range(3)]
    poison = ids[1]
    with OtlpReceiver() as receiver:
        exporter = Refuses(otlp_log_exporter(receiver.endpoint, insecure=True), poison)
        e = engine_with({}, store, clock=Clock(), alert_exporter=exporter, sender_options=FAST)
        for index in range(3):  # queued before the sender starts: one batch
            e.on_group_updated(facts(fingerprint=f"{index:016x}"), is_new=True)
        e.start()
        try:
            assert receiver.wait_for(lambda: len(received(receiver)) == 2)
            wait_until(lambda: store.pending_alerts(10) == [])
        finally:
            e.stop()
    assert alert_ids(receiver) == [ids[0], ids[2]]
    assert e.sender is not None
    assert e.sender.undeliverable == 1


def test_without_a_target_alerts_only_reach_subscribers() -> None:
    e = engine_with({}, clock=Clock())
    assert e.sender is None
    subscription = e.subscribe_alerts()
    e.start()
    try:
        e.on_group_updated(facts(), is_new=True)
        alert = subscription.get(timeout=1)
        assert alert is not None
        assert alert.kind == "new_failure"
        assert e.store.pending_alerts(10) == []
    finally:
        e.stop()


@pytest.mark.parametrize("where", ["option", "config"])
def test_the_alerts_target_comes_from_the_option_or_the_config(where: str) -> None:
    with OtlpReceiver() as receiver:
        target = f"http://{receiver.endpoint}"
        data: dict[str, Any] = {"engine": {"tick_interval": "1h"}}
        options: dict[str, Any] = {"clock": Clock(), "sender_options": FAST}
        if where == "config":
            data["alerts"] = {"target": target}
        else:
            options["alerts_endpoint"] = target
        e = engine_with(data, **options)
        e.start()
        try:
            e.on_group_updated(facts(), is_new=True)
            assert receiver.wait_for(lambda: len(received(receiver)) == 1)
        finally:
            e.stop()
