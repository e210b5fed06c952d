"""``faultlens check``: the processor self-test, end to end against the real processor.

It sends a marked synthetic failure with the official OTLP exporter, and the
processor reports grouping, the rules that match it with a dry run of their hooks
(nothing runs) and whether the alert target answers; afterwards nothing of the
check is left but one operator-log entry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from actions_support import config, python_hook
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.cli import main
from faultlens_collector.control.client import ControlClient

from tests.otlp_receiver import OtlpReceiver
from tests.processor_support import (
    TRACE_EXPORT,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    trace_request,
)
from tests.tls_support import make_certificates

HOOK = """
import os
open(os.environ["OUT"], "a").write("ran\\n")
"""


def send_failure(address: str, fingerprint: str) -> None:
    request = trace_request([span(events=[failure_attributes(fingerprint)])])
    _, error = raw_call(address, TRACE_EXPORT, request.SerializeToString())
    assert error is None, error


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def steps(lines: list[str]) -> dict[str, str]:
    return {line.split()[1]: line.split()[0] for line in lines}


def snapshot(client: ControlClient) -> tuple[list[str], int, list[str]]:
    groups = client.call("ListGroups", control_pb2.ListGroupsRequest(limit=1000))
    audit = client.call("ListAudit", control_pb2.ListAuditRequest(limit=1000))
    return (
        sorted(g.fingerprint for g in groups.groups),
        groups.total,
        [a.action for a in audit.actions],
    )


def test_check_passes_every_step_dry_runs_the_hook_and_leaves_only_an_audit_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "hook-ran"
    actions = config(
        {
            "hooks": {"restart": {"command": python_hook(HOOK), "env": {"OUT": str(marker)}}},
            "rules": [{"name": "deps", "category": "dependency", "fix": ["restart"]}],
        }
    )
    with (
        OtlpReceiver() as alerts,
        running_processor(
            tmp_path, actions=actions, alerts=f"127.0.0.1:{alerts.port}"
        ) as processor,
    ):
        send_failure(processor.address, "aaaa000000000001")
        client = ControlClient(processor.address)
        before = snapshot(client)
        received_before = len(alerts.log_records())
        code, lines, err = run(capsys, "check", "--target", processor.address, "--actor", "ci")
        after = snapshot(client)
        audit = client.call("ListAudit", control_pb2.ListAuditRequest(action="check")).actions
        time.sleep(0.3)
        received_after = len(alerts.log_records())
        client.close()
    assert code == 0, (lines, err)
    assert steps(lines) == {
        "health": "ok",
        "control": "ok",
        "ingest": "ok",
        "grouping": "ok",
        "rules": "ok",
        "alerts": "ok",
        "cleanup": "ok",
    }
    text = "\n".join(lines)
    assert "rule deps match" in text
    assert "hook restart (deps) would run: runs " in text
    assert f"127.0.0.1:{alerts.port} answered; the failure would raise new_failure" in text
    assert not marker.exists()  # dry run: the hook never ran
    assert received_after == received_before  # no alert was sent for the synthetic failure
    # Lists and counts are as before; the audit gained exactly one `check` line.
    assert after[0] == before[0]
    assert after[1] == before[1]
    assert after[2] == ["check", *before[2]]
    assert len(audit) == 1
    assert audit[0].actor == "ci"
    detail = json.loads(audit[0].detail_json)
    assert detail["grouped"] is True
    assert detail["rules"] == ["deps"]
    assert detail["hooks_would_run"] == ["restart"]


def test_check_reports_a_hook_that_would_not_run_and_an_alert_target_that_is_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = tmp_path / "restart.sh"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    actions = config(
        {
            "hooks": {"restart": {"command": [str(program)]}},
            "rules": [{"name": "payments", "service": ["payments"], "fix": ["restart"]}],
        }
    )
    with running_processor(tmp_path, actions=actions, alerts="127.0.0.1:9") as processor:
        program.unlink()  # the hook's program went away after the processor started
        code, lines, _ = run(
            capsys,
            "check",
            "--target",
            processor.address,
            "--service",
            "payments",
            "--timeout",
            "2",
        )
        remaining = ControlClient(processor.address).call(
            "ListGroups", control_pb2.ListGroupsRequest()
        )
    assert code == 1
    assert steps(lines)["rules"] == "FAIL"
    assert steps(lines)["alerts"] == "FAIL"
    assert steps(lines)["cleanup"] == "ok"
    assert "would NOT run: program" in "\n".join(lines)
    assert remaining.total == 0


def test_check_without_rules_or_alert_target_and_with_token_and_tls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from faultlens_collector.processor.server import TlsSettings

    certs = make_certificates(tmp_path)
    with running_processor(
        tmp_path, token="s3cret", tls=TlsSettings(certs.certificate, certs.key)
    ) as processor:
        target = f"https://{processor.address}"
        code, lines, _ = run(
            capsys, "check", "--target", target, "--token", "s3cret", "--tls-ca", str(certs.ca)
        )
        refused, refused_lines, _err = run(
            capsys, "check", "--target", target, "--token", "wrong", "--tls-ca", str(certs.ca)
        )
    assert code == 0, lines
    assert steps(lines)["rules"] == "skip"
    assert "no alert target" in "\n".join(lines)
    assert refused == 1
    assert steps(refused_lines) == {"health": "ok", "control": "FAIL"}
    assert "refused the token" in "\n".join(refused_lines)


def test_check_of_an_unreachable_target_fails_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines, _ = run(capsys, "check", "--target", "127.0.0.1:9", "--timeout", "1")
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith("FAIL  health")
    assert "cannot reach" in lines[0]


def test_an_abandoned_check_is_ended_and_its_group_removed_by_the_sweep(tmp_path: Path) -> None:
    from faultlens_collector._proto.faultlens.v1 import check_pb2

    with running_processor(tmp_path) as processor:
        client = ControlClient(processor.address)
        ticket = client.call_method(
            "/faultlens.v1.SelfCheck/Begin", check_pb2.BeginCheckRequest(), check_pb2.CheckTicket
        )
        send_failure(processor.address, ticket.fingerprint)
        assert client.get_group(ticket.fingerprint).count == 1
        checks = processor.checks
        assert checks is not None
        checks._expiry = 0.0  # the client went away
        checks.sweep()
        # A late copy (an exporter's retry) is removed too.
        send_failure(processor.address, ticket.fingerprint)
        checks.sweep()
        groups = client.call("ListGroups", control_pb2.ListGroupsRequest())
        audit = client.call("ListAudit", control_pb2.ListAuditRequest(action="check")).actions
        client.close()
    assert groups.total == 0
    assert json.loads(audit[-1].detail_json)["expired"] is True
