"""``faultlens run``: a small project with swallowed, logged and escaping failures in the
parent and in a child process; the baseline workflow; the report against its schema.

On Python 3.10/3.11 (the suite's interpreter here) the project's functions are
wrapped; the Python 3.12+ swallowed-exception detector is tested in
``test_detection_swallowed.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
from faultlens_collector.detection.report import schema

from tests.detection_support import faultlens
from tests.run_support import make_project

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12), reason="the 3.10/3.11 path")


def by_type(report: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for failure in report["failures"]:
        found.setdefault(failure["exception_type"], []).append(failure)
    return found


def test_parent_and_child_failures_are_grouped_and_reported(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    # The script (not the project's code) catches what escapes the project's `divide`.
    (root / "job.py").write_text(
        "from proj.work import divide, main\n\nmain('parent')\n"
        "for _ in range(500):\n    try:\n        divide(0)\n"
        "    except ZeroDivisionError:\n        pass\n"
    )
    report_path = tmp_path / "report.json"
    result = faultlens(
        "run", "--report", str(report_path), "--", sys.executable, "job.py", cwd=root
    )
    assert result.returncode == 1, result.stderr  # new failures, no baseline
    report = json.loads(report_path.read_text())
    jsonschema.validate(report, schema())
    found = by_type(report)
    # Logged with exception info: silent (handled), in the parent and in the child.
    parsed = found["ValueError"]
    assert sum(f["count"] for f in parsed) == 2
    assert all(f["silent"] for f in parsed)
    # The child's uncaught exception: escaped, from the child process.
    (child,) = found["RuntimeError"]
    assert child["silent"] is False
    assert child["count"] == 1
    assert "the child gives up" in child["message"]
    # `swallow_many`'s 500 divisions by zero are raised and caught inside the project's
    # code: control flow, no failure on 3.10/3.11 (3.12+ reports them as swallowed). The
    # 500 that escape the wrapped `divide` into the script are one escaped group, counted
    # exactly. The logged re-raise is seen in the parent and in the child (where
    # `proj.work` is `__main__`).
    zero = found["ZeroDivisionError"]
    assert sorted(f["count"] for f in zero) == [1, 1, 500]
    (escaped,) = [f for f in zero if f["count"] == 500]
    assert escaped["silent"] is False
    stats = report["statistics"]
    assert stats["total_failure_count"] == sum(f["count"] for f in report["failures"])
    assert report["metadata"]["command"] == "run"
    # Silent groups are printed first.
    lines = [line for line in result.stderr.splitlines() if "  new  " in line or " new " in line]
    kinds = [("silent" in line) for line in lines if line[:16].isalnum()]
    assert kinds == sorted(kinds, reverse=True)


def test_the_baseline_workflow(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    baseline = tmp_path / "faultlens-baseline.json"
    command = ("--", sys.executable, "job.py")
    first = faultlens(
        "run", "--baseline", str(baseline), "--report", str(baseline), *command, cwd=root
    )
    assert first.returncode == 0, first.stderr  # the first run passes and writes it
    assert baseline.exists()
    again = faultlens("run", "--baseline", str(baseline), *command, cwd=root)
    assert again.returncode == 0, again.stderr
    # A new defect fails the run; a removed one is reported as gone.
    make_project(
        tmp_path,
        extra="\n\ndef new_defect():\n    try:\n        [][1]\n    except IndexError:\n"
        "        log.exception('new')\n\n\nnew_defect()\n",
    )
    (root / "proj" / "work.py").write_text(
        (root / "proj" / "work.py").read_text().replace("        escapes()\n", "        pass\n")
    )
    report = tmp_path / "second.json"
    second = faultlens(
        "run", "--baseline", str(baseline), "--report", str(report), *command, cwd=root
    )
    assert second.returncode == 1, second.stderr
    data = json.loads(report.read_text())
    jsonschema.validate(data, schema())
    assert [f["exception_type"] for f in data["failures"] if f["status"] == "new"] == [
        "IndexError"
    ] * len([f for f in data["failures"] if f["status"] == "new"])
    assert [g["exception_type"] for g in data["gone"]] == ["RuntimeError"]
    assert "gone: RuntimeError" in second.stderr
    # --ignore accepts the idiom.
    ignored = faultlens(
        "run", "--baseline", str(baseline), "--ignore", "IndexError", *command, cwd=root
    )
    assert ignored.returncode == 0, ignored.stderr


def test_the_command_status_wins_and_usage_errors_exit_2(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    failing = faultlens("run", "--", sys.executable, "-c", "raise SystemExit(7)", cwd=root)
    assert failing.returncode == 7
    assert "the command exited with status 7" in failing.stderr
    missing = faultlens("run", cwd=root)
    assert missing.returncode == 2
    assert "give the command to run after --" in missing.stderr
    clean = faultlens("run", "--", sys.executable, "-c", "print('fine')", cwd=root)
    assert clean.returncode == 0, clean.stderr
    assert "fine" in clean.stdout


def test_send_also_reports_to_a_team_processor(tmp_path: Path) -> None:
    from faultlens_collector.control.client import ControlClient

    from tests.processor_support import all_groups, running_processor

    root = make_project(tmp_path / "project")
    (tmp_path / "team").mkdir()
    with running_processor(tmp_path / "team") as team:
        result = faultlens(
            "run",
            "--report",
            str(tmp_path / "r.json"),
            "--send",
            team.address,
            "--",
            sys.executable,
            "job.py",
            cwd=root,
        )
        local = {
            f["fingerprint"] for f in json.loads((tmp_path / "r.json").read_text())["failures"]
        }
        with ControlClient(team.address) as client:
            remote = set(all_groups(client))
    assert result.returncode == 1
    assert local == remote
