"""The action engine inside a real processor: each rule kind end to end over OTLP/gRPC,
alerts at a real OTLP receiver, halts across restarts, ``serve --config`` errors."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions_support import breaker_request, config, python_hook, wait_until
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient
from faultlens_collector.control.messages import key_items
from faultlens_collector.ingest.successes import success_keys
from faultlens_collector.processor.server import Processor
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.otlp_receiver import OtlpReceiver, attributes
from tests.processor_support import (
    FAULTLENS,
    METRICS_EXPORT,
    TRACE_EXPORT,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    trace_request,
)

FP = "0123456789abcdef"
RECORD_HOOK = """
import json, os, sys
with open(os.environ["OUT"], "a") as out:
    out.write(json.dumps(json.load(sys.stdin)) + "\\n")
"""


def now_ns() -> int:
    return time.time_ns()


def send(processor: Processor, *spans: Any, service: str = "checkout") -> None:
    _, error = raw_call(
        processor.address, TRACE_EXPORT, trace_request(list(spans), service).SerializeToString()
    )
    assert error is None, error


def failing(fingerprint: str = FP, *, index: int = 1, name: str = "charge", **extra: Any) -> Any:
    return span(
        name,
        index=index,
        time_unix_nano=now_ns(),
        events=[failure_attributes(fingerprint, **extra)],
    )


def succeeding(*, index: int = 100, name: str = "charge") -> Any:
    return span(name, index=index, time_unix_nano=now_ns())


def alerts(receiver: OtlpReceiver) -> list[dict[str, Any]]:
    return [attributes(record.attributes) for _, record in receiver.log_records()]


def alert_kinds(receiver: OtlpReceiver) -> list[str]:
    return [alert["faultlens.alert.kind"] for alert in alerts(receiver)]


def halts(client: ControlClient) -> list[Any]:
    return list(client.call("ListHalts", control_pb2.ListHaltsRequest()).halts)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def recording_config(tmp_path: Path, **extra: Any) -> Any:
    data: dict[str, Any] = {
        "hooks": {
            "record": {
                "command": python_hook(RECORD_HOOK),
                "env": {"OUT": str(tmp_path / "runs.jsonl")},
                "cooldown": "1h",
            }
        }
    }
    data.update(extra)
    return config(data)


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "runs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_fix_rule_runs_its_hook_once_per_cooldown_and_audits_it(tmp_path: Path) -> None:
    cfg = recording_config(
        tmp_path,
        rules=[{"name": "timeouts", "category": "timeout", "fix": ["record"]}],
    )
    with running_processor(tmp_path, actions=cfg) as processor:
        send(processor, failing(failure_category="timeout", exception_type="TimeoutError"))
        send(processor, failing("00000000000000bb", failure_category="value"))
        wait_until(lambda: len(runs(tmp_path)) == 1)
        send(processor, failing(failure_category="timeout", exception_type="TimeoutError"))
        (run,) = runs(tmp_path)
        assert run["purpose"] == "fix"
        assert run["rule"] == "timeouts"
        assert run["failure"]["fingerprint"] == FP
        assert run["failure"]["service"] == "checkout"
        assert run["failure"]["span_name"] == "charge"
        with ControlClient(processor.address) as client:
            wait_until(lambda: client.call("ListHookRuns", control_pb2.ListHookRunsRequest()).runs)
            (record,) = client.call("ListHookRuns", control_pb2.ListHookRunsRequest()).runs
        assert (record.hook, record.outcome, record.fingerprint) == ("record", "ok", FP)
        assert record.exited
        assert record.exit_code == 0
    assert len(runs(tmp_path)) == 1  # the second match was in cooldown


def test_a_fix_that_holds_is_verified_and_one_that_does_not_alerts(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    cfg = recording_config(
        tmp_path,
        engine={"tick_interval": "50ms", "verification_window": "500ms"},
        rules=[{"name": "all", "service": "checkout", "fix": ["record"]}],
    )
    with (
        running_processor(tmp_path, actions=cfg, alerts=receiver.endpoint) as processor,
        ControlClient(processor.address) as client,
    ):

        def record() -> Any:
            hooks = client.call("GetEffectiveness", control_pb2.GetEffectivenessRequest()).hooks
            return {hook.hook: hook for hook in hooks}["record"]

        send(processor, failing("00000000000000a1", index=1))  # stays quiet: verified
        wait_until(lambda: record().verified == 1)
        send(processor, failing("00000000000000a2", index=2))
        wait_until(lambda: record().pending == 1)
        send(processor, failing("00000000000000a2", index=3))  # recurs within the window
        assert receiver.wait_for(lambda: "fix_failed" in alert_kinds(receiver))
        (failed,) = [a for a in alerts(receiver) if a["faultlens.alert.kind"] == "fix_failed"]
        assert failed["failure.fingerprint"] == "00000000000000a2"
        assert failed["faultlens.fix.reason"] == "the group recurred"
        effectiveness = record()
        assert (effectiveness.samples, effectiveness.verified) == (2, 1)


def test_alert_rules_new_failures_and_regressions_reach_an_otlp_receiver(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    cfg = config({"rules": [{"name": "payments", "service": "checkout", "alert": True}]})
    with running_processor(tmp_path, actions=cfg, alerts=receiver.endpoint) as processor:
        send(processor, failing())
        assert receiver.wait_for(lambda: len(alerts(receiver)) >= 2)
        assert sorted(alert_kinds(receiver)) == ["new_failure", "rule_match"]
        first = alerts(receiver)[0]
        assert first["event.name"] == "faultlens.alert"
        assert first["failure.fingerprint"] == FP
        assert first["service.name"] == "checkout"
        with ControlClient(processor.address) as client:
            selection = control_pb2.GroupSelection(fingerprints=[FP])
            client.call("Resolve", control_pb2.SetStatusRequest(selection=selection))
        send(processor, failing())
        assert receiver.wait_for(lambda: "regression" in alert_kinds(receiver))
        # the regression re-armed the rule alert: it goes out once more
        assert receiver.wait_for(lambda: alert_kinds(receiver).count("rule_match") == 2)
        send(processor, failing())
        time.sleep(0.3)
        assert alert_kinds(receiver).count("rule_match") == 2
        assert alert_kinds(receiver).count("new_failure") == 1


def test_a_consecutive_halt_rule_halts_the_key_and_a_success_resets_the_streak(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    cfg = config({"halts": [{"name": "down", "key": ["service.name"], "consecutive": 3}]})
    with (
        running_processor(tmp_path, actions=cfg, alerts=receiver.endpoint) as processor,
        ControlClient(processor.address) as client,
    ):
        send(processor, failing(index=1))
        send(processor, failing(index=2))
        send(processor, succeeding())  # a span that ended well: the streak restarts
        send(processor, failing(index=3))
        # a request's failures count before its successes: 2, then a reset
        send(processor, failing(index=4), succeeding(index=101, name="other"))
        send(processor, failing(index=5))
        send(processor, failing(index=6))
        assert halts(client) == []
        send(processor, failing(index=7))
        (halt,) = halts(client)
        assert halt.rule == "down"
        assert [(item.name, item.string_value) for item in halt.key] == [
            ("service.name", "checkout")
        ]
        assert "3 consecutive failures" in halt.reason
        assert list(halt.fingerprints) == [FP]
        assert receiver.wait_for(lambda: "halt" in alert_kinds(receiver))


def test_a_halt_reason_names_the_failure_that_tripped_it_not_the_groups_first(
    tmp_path: Path,
) -> None:
    cfg = config({"halts": [{"name": "down", "key": ["service.name"], "consecutive": 3}]})
    with (
        running_processor(tmp_path, actions=cfg) as processor,
        ControlClient(processor.address) as client,
    ):
        for charge in (1, 2, 3):  # one group (one fingerprint), three messages
            send(processor, failing(index=charge, message=f"charge {charge} refused"))
        (halt,) = halts(client)
        group = client.get_group(FP)
    assert group.message == "charge 1 refused"  # the group keeps its first message
    assert halt.reason == "3 consecutive failures (last: ValueError: charge 3 refused)"


def test_success_keys_skip_failed_and_error_spans() -> None:
    failed = failing(index=1, name="pay")
    error = succeeding(index=2, name="refund")
    error.status.code = Status.STATUS_CODE_ERROR
    fine = span("search", index=3, attributes={"tenant": "t1"})
    other = span("search", index=4, attributes={"tenant": "t2"})
    body = trace_request([failed, error, fine, other]).SerializeToString()
    assert success_keys(body, ("service.name",)) == {(("service.name", "checkout"),)}
    assert success_keys(body, ("span.name", "tenant")) == {
        (("span.name", "search"), ("tenant", "t1")),
        (("span.name", "search"), ("tenant", "t2")),
    }
    only_failures = trace_request([failed]).SerializeToString()
    assert success_keys(only_failures, ("service.name",)) == set()


def test_a_windowed_halt_rule_needs_no_successes(tmp_path: Path) -> None:
    cfg = config({"halts": [{"name": "burst", "key": ["span.name"], "count": 4, "window": "1m"}]})
    with (
        running_processor(tmp_path, actions=cfg) as processor,
        ControlClient(processor.address) as client,
    ):
        send(processor, failing(index=1, failure_count=2), succeeding())
        send(processor, failing(index=2))
        assert halts(client) == []
        send(processor, failing(index=3))
        (halt,) = halts(client)
        assert halt.rule == "burst"
        assert "4 failures within 60 s" in halt.reason


def test_one_commit_counts_each_service_of_a_group_on_its_own(tmp_path: Path) -> None:
    cfg = config({"halts": [{"name": "down", "key": ["service.name"], "consecutive": 3}]})
    with (
        running_processor(tmp_path, actions=cfg) as processor,
        ControlClient(processor.address) as client,
    ):
        request = trace_request([failing(index=1), failing(index=2)], "alpha")
        request.resource_spans.extend(trace_request([failing(index=3)], "beta").resource_spans)
        _, error = raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())
        assert error is None
        assert halts(client) == []  # not 3 for whichever service came last
        send(processor, failing(index=4), service="alpha")
        (halt,) = halts(client)
        assert halt.key[0].string_value == "alpha"


def test_halt_keys_and_rules_read_span_attributes(tmp_path: Path) -> None:
    cfg = recording_config(
        tmp_path,
        halts=[{"name": "tenant-down", "key": ["tenant"], "consecutive": 2}],
        rules=[{"name": "eu", "attributes": {"region": "eu-*"}, "fix": ["record"]}],
    )

    def tenant_span(index: int, tenant: str, region: str = "us-1") -> Any:
        return span(
            "charge",
            index=index,
            time_unix_nano=now_ns(),
            attributes={"tenant": tenant, "region": region},
            events=[failure_attributes(FP)],
        )

    with (
        running_processor(tmp_path, actions=cfg) as processor,
        ControlClient(processor.address) as client,
    ):
        send(processor, tenant_span(1, "a"), tenant_span(2, "b"), tenant_span(3, "a", "eu-2"))
        (halt,) = halts(client)
        assert [(item.name, item.string_value) for item in halt.key] == [("tenant", "a")]
        wait_until(lambda: len(runs(tmp_path)) == 1)
    (run,) = runs(tmp_path)
    assert run["failure"]["attributes"]["region"] == "eu-2"
    assert run["failure"]["attributes"]["tenant"] == "a"


def test_breaker_open_from_metrics_service_is_alerted(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    with running_processor(tmp_path, alerts=receiver.endpoint) as processor:
        for state, opens in (("closed", 0), ("open", 1)):
            _, error = raw_call(
                processor.address,
                METRICS_EXPORT,
                breaker_request(state, opens, start=now_ns()).SerializeToString(),
            )
            assert error is None
        assert receiver.wait_for(lambda: "breaker_open" in alert_kinds(receiver))
        (alert,) = alerts(receiver)
        assert alert["breaker.name"] == "db"
        assert alert["service.name"] == "checkout"


def test_bulk_fix_runs_a_hook_for_every_selected_group(tmp_path: Path) -> None:
    with running_processor(tmp_path, actions=recording_config(tmp_path)) as processor:
        send(processor, *(failing(f"{i:016x}", index=i) for i in range(1, 4)))
        send(processor, failing("00000000000000ff", index=9), service="other")
        with ControlClient(processor.address) as client:
            reply = client.call(
                "Fix",
                control_pb2.FixRequest(
                    selection=control_pb2.GroupSelection(
                        filter=control_pb2.GroupFilter(services=["checkout"])
                    ),
                    hook="record",
                    actor="alice",
                ),
            )
            assert (reply.matched, reply.queued, reply.dropped) == (3, 3, 0)
            wait_until(lambda: len(runs(tmp_path)) == 3)
            (logged,) = client.call("ListAudit", control_pb2.ListAuditRequest()).actions
        assert {run["failure"]["fingerprint"] for run in runs(tmp_path)} == {
            f"{i:016x}" for i in range(1, 4)
        }
        assert all(run["purpose"] == "manual" for run in runs(tmp_path))
        assert all(run["requested_by"].startswith("alice (") for run in runs(tmp_path))
        assert (logged.action, logged.actor, logged.count) == ("fix", "alice", 3)
        assert json.loads(logged.detail_json)["hook"] == "record"


def test_halts_survive_a_restart_until_resumed(tmp_path: Path) -> None:
    cfg = config({"halts": [{"name": "down", "key": ["service.name"], "consecutive": 2}]})
    with running_processor(tmp_path, actions=cfg) as processor:
        send(processor, failing(index=1), failing(index=2))
        with ControlClient(processor.address) as client:
            (halt,) = halts(client)
    with (
        running_processor(tmp_path, actions=cfg) as processor,
        ControlClient(processor.address) as client,
    ):
        assert [h.id for h in halts(client)] == [halt.id]
        send(processor, failing(index=3), failing(index=4))  # halted: not counted again
        assert len(halts(client)) == 1
        client.call(
            "ResumeHalt",
            control_pb2.ResumeHaltRequest(key=key_items({"service.name": "checkout"})),
        )
        assert halts(client) == []
    with (
        running_processor(tmp_path, actions=cfg) as processor,
        ControlClient(processor.address) as client,
    ):
        assert halts(client) == []
        history = client.call("ListHalts", control_pb2.ListHaltsRequest(include_resumed=True)).halts
        assert [h.id for h in history] == [halt.id]
        assert history[0].resumed_unix_nano > 0


def test_a_dismissal_until_a_rate_reopens_the_group_and_alerts(tmp_path: Path) -> None:
    with (
        running_processor(tmp_path) as processor,
        ControlClient(processor.address) as client,
    ):
        send(processor, failing())
        client.call(
            "Dismiss",
            control_pb2.DismissRequest(
                selection=control_pb2.GroupSelection(fingerprints=[FP]),
                reason="known noise",
                reopen_above_per_hour=3,
            ),
        )
        stream = client.stream(
            "StreamAlerts", control_pb2.StreamAlertsRequest(kinds=["reopened"]), timeout=10
        )
        assert processor.control is not None
        wait_until(lambda: len(processor.control.streams) == 1)  # type: ignore[union-attr]
        send(processor, failing(index=2, failure_count=2))
        assert client.get_group(FP).status == "dismissed"
        send(processor, failing(index=3, failure_count=2))
        group = client.get_group(FP)
        assert group.status == "open"
        assert not group.HasField("dismissal")
        alert = next(iter(stream))
        assert alert.kind == "reopened"
        assert alert.attributes["failure.fingerprint"] == FP


def test_serve_with_a_malformed_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[hooks.x]\ncommand = "rm -rf /"\n')
    result = subprocess.run(
        [str(FAULTLENS), "serve", "--config", str(bad), "--store", str(tmp_path / "db")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"faultlens: {bad}: hooks.x.command: must be an argument list")
    assert "Traceback" not in result.stderr


def test_a_rate_spike_is_alerted_once_through_a_real_processor(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    bucket = 0.3
    cfg = config(
        {"alerts": {"rate_spike": {"bucket": bucket, "warmup": 2, "factor": 5.0, "min_count": 10}}}
    )
    with running_processor(tmp_path, actions=cfg, alerts=receiver.endpoint) as processor:
        # A baseline of one failure per bucket for three buckets...
        for index in range(3):
            send(processor, failing(index=index + 1))
            time.sleep(bucket)
        assert "rate_spike" not in alert_kinds(receiver)
        # ...then forty in one bucket: a spike, alerted once however much more follows.
        send(processor, failing(index=10, failure_count=20))
        send(processor, failing(index=11, failure_count=20))
        assert receiver.wait_for(lambda: "rate_spike" in alert_kinds(receiver))
        send(processor, failing(index=12, failure_count=20))
        time.sleep(0.2)
        spikes = [
            alert for alert in alerts(receiver) if alert["faultlens.alert.kind"] == "rate_spike"
        ]
        assert len(spikes) == 1
        assert spikes[0]["failure.fingerprint"] == FP
