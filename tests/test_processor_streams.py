"""WatchHalts and StreamAlerts, how the processor ends streams, and the token on every
control RPC."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from actions_support import wait_until
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient, ControlError
from faultlens_collector.control.messages import key_items, key_of
from faultlens_collector.control.methods import REPLIES, STREAMS
from faultlens_collector.processor.server import Processor

from tests.processor_support import (
    TRACE_EXPORT,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    trace_request,
)

KIND = control_pb2.HaltEventKind
KEY = {"service.name": "payments"}


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[Processor]:
    with running_processor(tmp_path) as running:
        yield running


def streams_open(processor: Processor) -> int:
    assert processor.control is not None
    return len(processor.control.streams)


def test_watch_halts_snapshot_changes_and_heartbeats(processor: Processor) -> None:
    with ControlClient(processor.address) as client:
        first = client.call(
            "StartHalt", control_pb2.StartHaltRequest(key=key_items(KEY), reason="before")
        )
        events = client.stream(
            "WatchHalts", control_pb2.WatchHaltsRequest(heartbeat_seconds=1), timeout=20
        )
        snapshot = next(events)
        assert snapshot.kind == KIND.Value("HALT_EVENT_KIND_SNAPSHOT")
        assert [halt.id for halt in snapshot.halts] == [first.id]
        assert key_of(snapshot.halts[0].key) == KEY
        second = client.call(
            "StartHalt",
            control_pb2.StartHaltRequest(key=key_items({"span.name": "charge"}), reason="r"),
        )
        halted = next(events)
        assert halted.kind == KIND.Value("HALT_EVENT_KIND_HALTED")
        assert [halt.id for halt in halted.halts] == [second.id]
        assert halted.version > snapshot.version
        client.call("ResumeHalt", control_pb2.ResumeHaltRequest(id=first.id, actor="ops"))
        resumed = next(events)
        assert resumed.kind == KIND.Value("HALT_EVENT_KIND_RESUMED")
        assert resumed.halts[0].resumed_by == "ops"
        heartbeat = next(events)
        assert heartbeat.kind == KIND.Value("HALT_EVENT_KIND_HEARTBEAT")
        assert heartbeat.version == resumed.version


def test_a_manual_halt_of_the_same_key_is_not_doubled(processor: Processor) -> None:
    with ControlClient(processor.address) as client:
        request = control_pb2.StartHaltRequest(key=key_items(KEY), reason="r")
        assert client.call("StartHalt", request).id == client.call("StartHalt", request).id
        for bad, message in (
            (control_pb2.StartHaltRequest(reason="r"), "give the key"),
            (control_pb2.StartHaltRequest(key=key_items(KEY)), "needs a reason"),
            (
                control_pb2.StartHaltRequest(key=[control_pb2.KeyItem(name="x")], reason="r"),
                "no value",
            ),
            (control_pb2.ResumeHaltRequest(), "id or its key"),
        ):
            name = "StartHalt" if isinstance(bad, control_pb2.StartHaltRequest) else "ResumeHalt"
            with pytest.raises(ControlError, match=message) as caught:
                client.call(name, bad)
            assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_stopping_the_processor_ends_its_streams_at_once(tmp_path: Path) -> None:
    ended: list[str] = []
    with running_processor(tmp_path) as processor:
        client = ControlClient(processor.address)

        def follow(name: str, request: Any) -> None:
            try:
                for _ in client.stream(name, request):
                    pass
                ended.append("ended")
            except ControlError as exc:
                ended.append(str(exc.code))

        threads = [
            threading.Thread(target=follow, args=("WatchHalts", control_pb2.WatchHaltsRequest())),
            threading.Thread(
                target=follow, args=("StreamAlerts", control_pb2.StreamAlertsRequest())
            ),
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: streams_open(processor) == 2)
        started = time.monotonic()
    for thread in threads:
        thread.join(10)
    client.close()
    assert time.monotonic() - started < 3  # not the 1 s grace per stream, nor forever
    assert ended == ["ended", "ended"]


def test_streams_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    with (
        running_processor(tmp_path, max_streams=1) as processor,
        ControlClient(processor.address) as client,
    ):
        first = client.stream("WatchHalts", control_pb2.WatchHaltsRequest(), timeout=10)
        next(first)
        with pytest.raises(ControlError) as caught:
            next(client.stream("WatchHalts", control_pb2.WatchHaltsRequest(), timeout=10))
        assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_stream_alerts_filters_by_kind(processor: Processor) -> None:
    with ControlClient(processor.address) as client:
        alerts = client.stream(
            "StreamAlerts", control_pb2.StreamAlertsRequest(kinds=["halt"]), timeout=10
        )
        wait_until(lambda: streams_open(processor) == 1)
        raw_call(
            processor.address,
            TRACE_EXPORT,
            trace_request([span(events=[failure_attributes()])]).SerializeToString(),
        )  # a new_failure alert, not asked for
        client.call("StartHalt", control_pb2.StartHaltRequest(key=key_items(KEY), reason="stop"))
        alert = next(alerts)
        assert alert.kind == "halt"
        assert alert.severity == "critical"
        assert alert.attributes["service.name"] == "payments"
        assert "stop" in alert.body


# Every control RPC: a request each, to check the token is required.
REQUESTS: dict[str, Any] = {
    "ListGroups": control_pb2.ListGroupsRequest(),
    "GetGroup": control_pb2.GetGroupRequest(fingerprint="0123456789abcdef"),
    "Dismiss": control_pb2.DismissRequest(
        selection=control_pb2.GroupSelection(all=True), reason="r"
    ),
    "Categorize": control_pb2.CategorizeRequest(
        selection=control_pb2.GroupSelection(all=True), category="io"
    ),
    "Resolve": control_pb2.SetStatusRequest(selection=control_pb2.GroupSelection(all=True)),
    "Reopen": control_pb2.SetStatusRequest(selection=control_pb2.GroupSelection(all=True)),
    "Fix": control_pb2.FixRequest(selection=control_pb2.GroupSelection(all=True), hook="h"),
    "ListHalts": control_pb2.ListHaltsRequest(),
    "ResumeHalt": control_pb2.ResumeHaltRequest(id="x"),
    "StartHalt": control_pb2.StartHaltRequest(key=key_items(KEY), reason="r"),
    "ListAudit": control_pb2.ListAuditRequest(),
    "ListHookRuns": control_pb2.ListHookRunsRequest(),
    "GetEffectiveness": control_pb2.GetEffectivenessRequest(),
    "ExportGroups": control_pb2.ExportGroupsRequest(),
    "WatchHalts": control_pb2.WatchHaltsRequest(),
    "StreamAlerts": control_pb2.StreamAlertsRequest(),
    "GetSeries": control_pb2.SeriesRequest(),
    "ListAlerts": control_pb2.ListAlertsRequest(),
    "WatchGroups": control_pb2.WatchGroupsRequest(),
}


def first_reply(client: ControlClient, name: str, request: Any) -> Any:
    if name in STREAMS:
        return next(client.stream(name, request, timeout=10))
    return client.call(name, request)


def test_every_control_rpc_needs_the_token(tmp_path: Path) -> None:
    assert set(REQUESTS) == set(REPLIES) | set(STREAMS)
    with running_processor(tmp_path, token="s3cret") as processor:
        for token in (None, "wrong"):
            with ControlClient(processor.address, token=token) as client:
                for name, request in REQUESTS.items():
                    with pytest.raises(ControlError) as caught:
                        first_reply(client, name, request)
                    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED, name
        with ControlClient(processor.address, token="s3cret") as client:
            halt = client.call("StartHalt", REQUESTS["StartHalt"])
            assert (
                next(client.stream("WatchHalts", REQUESTS["WatchHalts"], timeout=10)).halts[0].id
                == halt.id
            )
            assert client.call("ListAudit", REQUESTS["ListAudit"]).actions[0].action == "halt"
