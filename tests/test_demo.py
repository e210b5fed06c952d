"""``faultlens demo``, run the way a new user runs it: the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from faultlens_collector.demo import sample_app

FAULTLENS = Path(sys.executable).with_name("faultlens")


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FAULTLENS), "demo", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_demo_groups_the_sample_programs_failures() -> None:
    result = _demo("--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    groups = {g["exception_type"]: g for g in report["groups"]}
    assert all(g["service"] == "demo-orders" and g["status"] == "open" for g in groups.values())
    assert set(groups) == {
        "TimeoutError",
        "KeyError",
        "OSError",
        "ValueError",
        "ConnectionResetError",
        "ZeroDivisionError",
        "ConnectionRefusedError",
    }
    storm = groups["ValueError"]
    assert storm["count"] == sample_app.STORM_RECORDS  # exact, though aggregated
    timeout = groups["TimeoutError"]
    assert (timeout["category"], timeout["handled_count"]) == ("timeout", timeout["count"])
    # Four orders before the fix hook ran, four after: the timeouts stopped, the lookups not.
    assert (groups["KeyError"]["count"], groups["KeyError"]["handled_count"]) == (8, 0)
    assert timeout["count"] == 4
    assert groups["OSError"]["category"] == "resource"
    assert groups["ZeroDivisionError"]["severity"] == "critical"
    # Sample trace ids to open the failures in a tracing UI.
    assert all(len(g["samples"][0]["trace_id"]) == 32 for g in groups.values())

    # The fix hook ran for the timeouts and, as they stopped, was verified.
    (fix_run,) = report["fix_runs"]
    assert fix_run["fingerprint"] == timeout["fingerprint"]
    assert fix_run["outcome"] == "ok"
    assert "pricing service restarted" in fix_run["output_tail"]
    assert report["fix_record"] == {"verified": 1, "decided": 1, "pending": 0}
    # Three refused charges in a row halted charge-card; the worker's guard refused calls.
    payments = report["payments"]
    assert payments["failed"] >= 3
    assert payments["refused"] == 3
    assert groups["ConnectionRefusedError"]["count"] == payments["failed"]
    (halt,) = report["halts"]
    assert dict(halt["key"]) == {"service.name": "demo-orders", "span.name": "charge-card"}
    # Alerts arrived at the OTLP log receiver: one per new group, and the halt.
    kinds = [alert["kind"] for alert in report["alerts"]]
    assert kinds.count("new_failure") == len(groups)
    assert kinds.count("halt") == 1
    assert "fix_failed" not in kinds


def test_demo_prints_a_readable_table() -> None:
    result = _demo()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("sample worker: 8 orders, 4 silent fallbacks")
    header = next(line for line in lines if line.startswith("fingerprint"))
    assert header.split() == [
        "fingerprint",
        "count",
        "category",
        "severity",
        "outcome",
        "service",
        "type",
        "message",
    ]
    assert "failures in 7 groups" in result.stdout
    assert "processor: 127.0.0.1:" in result.stdout
    assert "fixes verified: 1 of 1 decided" in result.stdout
    assert "then 3 calls refused by the worker's fleet-wide halt guard" in result.stdout
    assert "alerts received by the OTLP log receiver: halt x1, new_failure x7" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_errors_are_one_line_without_traceback() -> None:
    result = subprocess.run(
        [str(FAULTLENS), "no-such-command"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("faultlens: argument COMMAND")
