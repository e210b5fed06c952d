"""What the command line prints, against a real processor with fix hooks: every printing
subcommand takes ``--json`` and then prints JSON only; a group's hook runs with their
verification state in ``failures show``, its ``--json``, the control API and the export;
``audit --effectiveness`` in percentages and seconds for people, full precision in JSON."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions_support import config, python_hook, wait_until
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.cli import build_parser, main
from faultlens_collector.control.client import ControlClient
from faultlens_collector.processor.server import Processor

from tests.detection_support import faultlens, make_package
from tests.processor_support import (
    FAULTLENS,
    TRACE_EXPORT,
    failure_attributes,
    raw_call,
    running_processor,
    span,
    trace_request,
)

#: Subcommands that run a server until stopped: they print their state on stderr, never on
#: stdout, so there is nothing for ``--json`` to shape.
SERVERS = frozenset({"serve", "console"})

VERIFIED, RECURRED, VERIFIED_TOO = "00000000000000a1", "00000000000000a2", "00000000000000a3"
BROKEN, WAITING = "00000000000000b1", "00000000000000c1"


def now_ns() -> int:
    return time.time_ns()


def send(processor: Processor, fingerprint: str, category: str, index: int) -> None:
    event = failure_attributes(fingerprint, failure_category=category)
    request = trace_request([span("charge", index=index, time_unix_nano=now_ns(), events=[event])])
    _, error = raw_call(processor.address, TRACE_EXPORT, request.SerializeToString())
    assert error is None, error


def effectiveness(client: ControlClient) -> dict[str, Any]:
    hooks = client.call("GetEffectiveness", control_pb2.GetEffectivenessRequest()).hooks
    return {hook.hook: hook for hook in hooks}


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    """Fixes verified, failed by a recurrence, failed by the hook itself, and pending."""
    tmp_path = Path(tmp_path_factory.mktemp("cli"))
    cfg = config(
        {
            "engine": {"tick_interval": "50ms", "verification_window": "1500ms"},
            "hooks": {
                "restart": {"command": python_hook("pass")},
                "broken": {"command": python_hook("import sys; sys.exit(3)")},
                "patient": {"command": python_hook("pass"), "verification_window": "1h"},
            },
            "rules": [
                {"name": "values", "category": "value", "fix": ["restart"]},
                {"name": "disks", "category": "io", "fix": ["broken"]},
                {"name": "lookups", "category": "lookup", "fix": ["patient"]},
            ],
        }
    )
    with (
        running_processor(tmp_path, actions=cfg) as running,
        ControlClient(running.address) as client,
    ):
        send(running, VERIFIED, "value", 1)
        send(running, RECURRED, "value", 2)
        send(running, BROKEN, "io", 3)
        send(running, WAITING, "lookup", 4)
        wait_until(lambda: effectiveness(client)["restart"].pending == 2)
        send(running, RECURRED, "value", 5)  # within its window: that fix failed
        send(running, VERIFIED_TOO, "value", 6)
        wait_until(lambda: effectiveness(client)["restart"].samples == 3, timeout=20)
        wait_until(
            lambda: len(client.call("ListHookRuns", control_pb2.ListHookRunsRequest()).runs) == 5
        )
        yield running


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --json everywhere
def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Any]:
    subcommands = [
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    ]
    if not subcommands:
        yield path, parser
        return
    for action in subcommands:
        for name, child in action.choices.items():
            yield from _leaves(child, (*path, name))


def test_every_subcommand_that_prints_takes_json() -> None:
    leaves = dict(_leaves(build_parser()))
    assert ("halts", "resume") in leaves
    assert ("halts", "start") in leaves
    missing = [
        " ".join(path)
        for path, parser in leaves.items()
        if path[0] not in SERVERS
        and not any("--json" in action.option_strings for action in parser._actions)
    ]
    assert missing == []


def test_each_subcommand_prints_json_only_with_json(
    processor: Processor, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ("--target", processor.address)
    actor = ("--actor", "ops")
    invocations: list[tuple[str, ...]] = [
        ("failures", "list"),
        ("failures", "show", VERIFIED),
        ("failures", "export"),
        ("failures", "dismiss", BROKEN, "--reason", "known", *actor),
        ("failures", "categorize", BROKEN, "--add-tag", "disk", *actor),
        ("failures", "resolve", BROKEN, *actor),
        ("failures", "reopen", BROKEN, *actor),
        ("failures", "fix", WAITING, "--hook", "patient", "--dry-run", *actor),
        ("halts", "start", "--key", "service.name=pay", "--reason", "incident 7", *actor),
        ("halts", "list"),
        ("halts", "resume", "--key", "service.name=pay", *actor),
        ("audit",),
        ("audit", "--hooks"),
        ("audit", "--effectiveness"),
    ]
    printed = {}
    for argv in invocations:
        code, out, _ = run(capsys, *argv, "--json", *target)
        assert code == 0, argv
        printed[_path(argv)] = json.loads(out)  # JSON and nothing else
    assert printed[("halts", "start")]["key"] == {"service.name": "pay"}
    (resumed,) = printed[("halts", "resume")]
    assert resumed["id"] == printed[("halts", "start")]["id"]
    assert resumed["resumed_by"] == "ops"
    exported = {group["fingerprint"] for group in printed[("failures", "export")]}
    assert {VERIFIED, RECURRED, BROKEN, WAITING} <= exported
    # The other leaves: demo (tests/test_demo.py), the two that follow a stream, check, scan
    # and run (below).
    covered = {_path(argv) for argv in invocations} | {("demo",), ("halts", "watch")}
    covered |= {("alerts", "watch"), ("check",), ("scan",), ("run",)}
    assert {path for path in dict(_leaves(build_parser())) if path[0] not in SERVERS} == covered


def _path(argv: tuple[str, ...]) -> tuple[str, ...]:
    """The subcommand an invocation runs (``audit --hooks`` is ``audit``)."""
    return tuple(token for token in argv[:2] if not token.startswith("-"))


def test_the_watch_commands_print_one_json_object_per_line(processor: Processor) -> None:
    key = control_pb2.KeyItem(name="service.name", string_value="watched")
    for argv, kind in ((("halts", "watch"), "snapshot"), (("alerts", "watch"), "halt")):
        with subprocess.Popen(
            [str(FAULTLENS), *argv, "--json", "--target", processor.address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as watching:
            lines: list[str] = []
            assert watching.stdout is not None
            reader = threading.Thread(
                target=lambda out=watching.stdout, into=lines: into.append(out.readline()),
                daemon=True,
            )
            reader.start()
            try:
                deadline = time.monotonic() + 20
                while reader.is_alive() and time.monotonic() < deadline:
                    if argv[0] == "alerts":  # a halt raises an alert: until the stream has one
                        with ControlClient(processor.address) as client:
                            request = control_pb2.StartHaltRequest(key=[key], reason="watch")
                            client.call("StartHalt", request)
                            client.call("ResumeHalt", control_pb2.ResumeHaltRequest(key=[key]))
                    reader.join(timeout=0.5)
            finally:
                watching.terminate()
        (line,) = lines
        assert json.loads(line)["kind"] == kind


def test_check_prints_one_json_object_with_every_step(
    processor: Processor, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "check", "--json", "--target", processor.address)
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    steps = {step["step"]: step["status"] for step in report["steps"]}
    assert steps["health"] == steps["ingest"] == steps["grouping"] == steps["cleanup"] == "ok"
    code, out, _ = run(capsys, "check", "--json", "--target", "127.0.0.1:9", "--timeout", "1")
    assert code == 1
    assert json.loads(out)["steps"][0]["status"] == "failed"


def test_scan_and_run_print_their_report_as_json_only(tmp_path: Path) -> None:
    root = make_package(tmp_path / "scan", {"__init__.py": "", "missing.py": "import nope_xyz\n"})
    scanned = faultlens("scan", "shop", "--json", "--no-entry-points", cwd=root, root=root)
    assert scanned.returncode == 1, scanned.stderr
    report = json.loads(scanned.stdout)
    assert report["metadata"]["command"] == "scan"
    assert [failure["exception_type"] for failure in report["failures"]] == ["ModuleNotFoundError"]
    project = tmp_path / "run"
    project.mkdir()
    (project / "job.py").write_text(
        "print('the job speaks on stdout')\ntry:\n    {}['k']\nexcept KeyError:\n    pass\n"
    )
    ran = faultlens("run", "--json", "--", sys.executable, "job.py", cwd=project)
    report = json.loads(ran.stdout)  # the report only: the job's output went to stderr
    assert report["metadata"]["command"] == "run"
    assert "the job speaks on stdout" in ran.stderr


# hook runs and their verification, per group
def _runs_by_fingerprint(runs: Any) -> dict[str, Any]:
    return {run.fingerprint: run for run in runs}


def test_the_control_api_reports_each_fix_with_its_verification(processor: Processor) -> None:
    with ControlClient(processor.address) as client:
        runs = client.call("ListHookRuns", control_pb2.ListHookRunsRequest()).runs
        by_group = {}
        for fingerprint in (VERIFIED, RECURRED, BROKEN, WAITING):
            by_group[fingerprint] = list(client.get_group(fingerprint).hook_runs)
        listed = client.call("ListGroups", control_pb2.ListGroupsRequest()).groups
    verified, recurred, broken, waiting = (
        _runs_by_fingerprint(runs)[fingerprint]
        for fingerprint in (VERIFIED, RECURRED, BROKEN, WAITING)
    )
    assert (verified.outcome, verified.verification.state) == ("ok", "verified")
    assert verified.verification.reason == "no recurrence within the window"
    assert verified.verification.decided_unix_nano > verified.verification.applied_unix_nano > 0
    assert verified.verification.deadline_unix_nano == 0  # only while pending
    assert (recurred.verification.state, recurred.verification.reason) == (
        "failed",
        "the group recurred",
    )
    assert (broken.outcome, broken.verification.state) == ("failed", "failed")
    assert broken.verification.reason.startswith("hook ")
    assert (waiting.verification.state, waiting.verification.decided_unix_nano) == ("pending", 0)
    assert waiting.verification.deadline_unix_nano > now_ns() + 3000 * 10**9
    # GetGroup carries the group's own runs; ListGroups carries none.
    for fingerprint, own in by_group.items():
        assert [run.fingerprint for run in own] == [fingerprint]
        assert own[0] == _runs_by_fingerprint(runs)[fingerprint]
    assert all(not group.hook_runs for group in listed)


def test_failures_show_says_whether_the_fix_held(
    processor: Processor, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ("--target", processor.address)
    shown = {}
    for fingerprint in (VERIFIED, RECURRED, BROKEN, WAITING):
        code, out, _ = run(capsys, "failures", "show", fingerprint, *target)
        assert code == 0
        shown[fingerprint] = out
        code, out, _ = run(capsys, "failures", "show", fingerprint, "--json", *target)
        (hook_run,) = json.loads(out)["hook_runs"]
        assert hook_run["fingerprint"] == fingerprint
        shown[fingerprint, "json"] = hook_run
    assert "hook runs (newest first)" in shown[VERIFIED]
    assert "restart  fix (rule values)  ok in " in shown[VERIFIED]
    assert "fix verified at 20" in shown[VERIFIED]
    assert "(no recurrence within the window)" in shown[VERIFIED]
    assert "fix failed at 20" in shown[RECURRED]
    assert "(the group recurred)" in shown[RECURRED]
    assert "broken  fix (rule disks)  failed in " in shown[BROKEN]
    assert "fix pending: verified at 20" in shown[WAITING]
    verification = shown[VERIFIED, "json"]["verification"]
    assert verification["state"] == "verified"
    assert verification["decided_at"].endswith("Z")
    assert verification["deadline"] is None
    assert shown[WAITING, "json"]["verification"]["state"] == "pending"
    assert shown[WAITING, "json"]["verification"]["decided_at"] is None


def test_the_export_carries_each_groups_hook_runs(
    processor: Processor, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "export.jsonl"
    code, _, _ = run(
        capsys, "failures", "export", "--format", "jsonl", "-o", str(output),
        "--target", processor.address,
    )  # fmt: skip
    assert code == 0
    groups = {g["fingerprint"]: g for g in map(json.loads, output.read_text().splitlines())}
    states = {
        fingerprint: [run["verification"]["state"] for run in groups[fingerprint]["hook_runs"]]
        for fingerprint in (VERIFIED, RECURRED, BROKEN, WAITING, VERIFIED_TOO)
    }
    assert states == {
        VERIFIED: ["verified"],
        RECURRED: ["failed"],
        BROKEN: ["failed"],
        WAITING: ["pending"],
        VERIFIED_TOO: ["verified"],
    }


# audit --effectiveness
def test_effectiveness_reads_as_percentages_and_seconds_and_stays_exact_in_json(
    processor: Processor, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ("--target", processor.address)
    code, out, _ = run(capsys, "audit", "--effectiveness", *target)
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert rows["restart"][:4] == ["restart", "3", "2", "66.7%"]
    assert rows["restart"][5] in ("ms", "s")  # a mean duration: "31.2 ms", "1.02 s"
    float(rows["restart"][4])
    assert rows["broken"][:4] == ["broken", "1", "0", "0.0%"]
    assert rows["patient"][:5] == ["patient", "0", "0", "—", "—"]
    assert "0.666" not in out
    code, out, _ = run(capsys, "audit", "--effectiveness", "--json", *target)
    exact = {row["hook"]: row for row in json.loads(out)}
    assert exact["restart"]["success_rate"] == 2 / 3
    assert 0 < exact["restart"]["mean_duration"] < 30
    assert exact["patient"]["success_rate"] is None
