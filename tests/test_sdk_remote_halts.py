"""The SDK's fleet-wide halt guard against a real processor: following halts, refusing
work through a FailureTracker, processor restarts, unreachable processors, tokens."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from actions_support import wait_until
from faultlens.resilience import FailureTracker, HaltedError
from faultlens.resilience import _halt_wire as wire
from faultlens.resilience import _remote_halts as remote_halts
from faultlens.resilience._backoff import constant
from faultlens.resilience._remote_halts import RemoteHalts
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient
from faultlens_collector.control.messages import key_items
from google.protobuf import descriptor_pb2

from tests.processor_support import ServeProcess, running_processor

PAYMENTS = {"service.name": "payments"}
FAST = constant(0.05)


def start_halt(address: str, key: dict[str, Any], reason: str = "incident", **kw: Any) -> Any:
    with ControlClient(address, **kw) as client:
        return client.call(
            "StartHalt", control_pb2.StartHaltRequest(key=key_items(key), reason=reason)
        )


def resume(address: str, halt_id: str) -> None:
    with ControlClient(address) as client:
        client.call("ResumeHalt", control_pb2.ResumeHaltRequest(id=halt_id))


@pytest.fixture
def guards() -> Iterator[list[RemoteHalts]]:
    made: list[RemoteHalts] = []
    yield made
    for guard in made:
        guard.close()


def guard_for(guards: list[RemoteHalts], address: str, **options: Any) -> RemoteHalts:
    options.setdefault("heartbeat", 1)
    options.setdefault("backoff", FAST)
    guard = RemoteHalts(address, **options)
    guards.append(guard)
    return guard


def test_the_hand_built_messages_match_control_proto() -> None:
    generated = descriptor_pb2.FileDescriptorProto()
    control_pb2.DESCRIPTOR.CopyToProto(generated)
    real = {message.name: message for message in generated.message_type}
    for message in wire.file_descriptor().message_type:
        twins = {field.name: field for field in real[message.name].field}
        for field in message.field:
            twin = twins[field.name]
            assert (twin.number, twin.type, twin.label, twin.type_name) == (
                field.number,
                field.type,
                field.label,
                field.type_name,
            ), f"{message.name}.{field.name}"
            assert twin.HasField("oneof_index") == field.HasField("oneof_index")
    (kinds,) = [enum for enum in generated.enum_type if enum.name == "HaltEventKind"]
    assert [(v.name, v.number) for v in kinds.value] == list(
        zip(wire.EVENT_KINDS, range(len(wire.EVENT_KINDS)), strict=True)
    )
    assert wire.METHOD == "/faultlens.v1.Control/WatchHalts"


def test_the_guard_follows_a_processors_halts(tmp_path: Path, guards: list[RemoteHalts]) -> None:
    changes: list[int] = []
    with running_processor(tmp_path) as processor:
        fleet = guard_for(
            guards,
            processor.address,
            context=PAYMENTS,
            on_change=lambda halts: changes.append(len(halts)),
        )
        assert fleet.wait_synced(10)
        tracker = FailureTracker("checkout", threshold=100, halt_sources=[fleet], record=False)
        tracker.guard({"span.name": "charge"})  # nothing halted
        halt = start_halt(processor.address, PAYMENTS, "payments-db down")
        wait_until(lambda: fleet.halt_for({}) is not None)
        with pytest.raises(HaltedError, match="payments-db down") as caught:
            tracker.guard({"span.name": "charge"})
        assert caught.value.key == PAYMENTS  # the halt's key
        with pytest.raises(HaltedError):
            fleet.guard()
        other = RemoteHalts(processor.address, context={"service.name": "search"}, heartbeat=1)
        guards.append(other)
        assert other.wait_synced(10)
        other.guard({"span.name": "charge"})  # another service works on
        resume(processor.address, halt.id)
        wait_until(lambda: fleet.halt_for({}) is None)
        tracker.guard({"span.name": "charge"})
        status = fleet.status()
        assert (status.state, status.synced, status.halts, status.stale) == (
            "connected",
            True,
            0,
            False,
        )
        assert status.version >= 2
    assert changes[-2:] == [1, 0]


def test_processor_restart_keeps_the_last_state_then_catches_up(
    tmp_path: Path, guards: list[RemoteHalts], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="faultlens")
    store = tmp_path / "faultlens.db"
    first = ServeProcess(store).start()
    address = first.address
    fleet = guard_for(guards, address, context=PAYMENTS)
    try:
        assert fleet.wait_synced(10)
        halt = start_halt(address, PAYMENTS)
        wait_until(lambda: fleet.halt_for({}) is not None)
    finally:
        first.kill()
    wait_until(lambda: fleet.status().state == "unreachable")
    status = fleet.status()
    assert status.stale
    assert status.halts == 1
    assert status.last_error
    with pytest.raises(HaltedError):
        fleet.guard({"span.name": "charge"})  # the last known state still applies
    # The state changes first, the warning follows from the guard's thread.
    wait_until(lambda: any("halt guard lost" in r.getMessage() for r in caplog.records))
    lost = [r.getMessage() for r in caplog.records if "halt guard lost" in r.getMessage()]
    assert len(lost) == 1
    assert "keeping the 1 halt(s) last known" in lost[0]
    time.sleep(0.3)  # failed reconnects meanwhile log nothing more
    assert sum("halt guard" in r.getMessage() for r in caplog.records) == 1

    second = ServeProcess(store).start(listen=address)
    try:
        wait_until(lambda: fleet.status().state == "connected", timeout=20)
        assert [h.reason for h in fleet.halts()] == ["incident (by unknown)"]  # from the store
        resume(address, halt.id)
        wait_until(lambda: fleet.halt_for({}) is None)
        start_halt(address, {"span.name": "refund"})
        wait_until(lambda: fleet.halt_for({"span.name": "refund"}) is not None)
        assert fleet.halt_for({"span.name": "charge"}) is None
    finally:
        second.stop()
    assert any(
        "connected to" in r.getMessage() and "again" in r.getMessage() for r in caplog.records
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_processor_fails_open_or_closed(
    guards: list[RemoteHalts], caplog: pytest.LogCaptureFixture
) -> None:
    address = f"127.0.0.1:{free_port()}"
    opened = guard_for(guards, address)
    closed = guard_for(guards, address, fail_closed=True, context=PAYMENTS)
    wait_until(
        lambda: closed.status().state == "unreachable" and opened.status().state == "unreachable"
    )
    assert not opened.status().synced
    assert opened.halt_for({"x": 1}) is None
    halt = closed.halt_for({"span.name": "charge"})
    assert halt is not None
    assert "not known yet" in halt.reason
    with pytest.raises(HaltedError):
        closed.guard()
    assert not opened.wait_synced(0.05)
    assert any(
        "cannot reach" in r.getMessage() and "every key counts as halted" in r.getMessage()
        for r in caplog.records
    )


def test_the_token_is_sent(tmp_path: Path, guards: list[RemoteHalts]) -> None:
    with running_processor(tmp_path, token="s3cret") as processor:
        refused = guard_for(guards, processor.address)
        wait_until(lambda: refused.status().state == "unreachable")
        assert "UNAUTHENTICATED" in (refused.status().last_error or "")
        allowed = guard_for(guards, processor.address, token="s3cret")
        assert allowed.wait_synced(10)
        from_env = guard_for(
            guards,
            None,
            environ={
                "FAULTLENS_ENDPOINT": f"http://{processor.address}",
                "FAULTLENS_HEADERS": "authorization=Bearer%20s3cret",
            },
        )
        assert from_env.wait_synced(10)


class _SilentProcessor:
    """A WatchHalts server that sends one snapshot, then nothing: a dead stream."""

    def __init__(self) -> None:
        self.calls = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_stream_rpc_method_handler(self.watch)
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("faultlens.v1.Control", {"WatchHalts": handler})]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def watch(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self.calls += 1
        yield control_pb2.HaltEvent(kind=control_pb2.HALT_EVENT_KIND_SNAPSHOT).SerializeToString()
        while context.is_active():
            time.sleep(0.05)


def test_a_stream_silent_for_three_heartbeats_is_replaced(
    guards: list[RemoteHalts], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote_halts, "SILENT_HEARTBEATS", 0.5)
    silent = _SilentProcessor()
    try:
        fleet = guard_for(guards, f"127.0.0.1:{silent.port}")
        assert fleet.wait_synced(10)
        wait_until(lambda: silent.calls >= 2)
        assert fleet.status().synced
    finally:
        silent.server.stop(None)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1 second"):
        RemoteHalts("localhost:4317", heartbeat=0.5, start=False)
    with pytest.raises(ValueError, match="scheme"):
        RemoteHalts("ftp://x:1", start=False)
    with pytest.raises(TypeError):
        RemoteHalts("localhost:4317", context={"k": [1]}, start=False)  # type: ignore[dict-item]


def test_the_guard_reports_its_halts_in_health(tmp_path: Path, guards: list[RemoteHalts]) -> None:
    from faultlens.resilience import health

    def mine(guard: RemoteHalts) -> Any:
        (component,) = [
            c for c in health().components if c.kind == "halt_guard" and c.name == guard.endpoint
        ]
        return component

    with running_processor(tmp_path) as processor:
        fleet = guard_for(guards, processor.address, context=PAYMENTS)
        assert fleet.wait_synced(10)
        assert mine(fleet).status == "healthy"
        start_halt(processor.address, {"service.name": "search"}, "search only")
        halt = start_halt(processor.address, {**PAYMENTS, "span.name": "charge"}, "psp down")
        wait_until(lambda: len(fleet.halts()) == 2)
        component = mine(fleet)
        # Only the halt that can cover payments' work makes this application unhealthy.
        assert component.status == "unhealthy"
        assert [h["reason"].split(" (by")[0] for h in component.detail["halts"]] == ["psp down"]
        assert health().status == "unhealthy"
        resume(processor.address, halt.id)
        wait_until(lambda: len(fleet.halts()) == 1)
        assert mine(fleet).status == "healthy"
    # The processor is gone: the guard is degraded and says why.
    wait_until(lambda: fleet.status().state != "connected")
    component = mine(fleet)
    assert component.status == "degraded"
    assert component.detail["state"] != "connected"
