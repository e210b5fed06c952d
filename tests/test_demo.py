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
    groups = {g["exception_type"]: g for g in json.loads(result.stdout)}
    assert all(g["service"] == "demo-orders" and g["status"] == "open" for g in groups.values())
    assert set(groups) == {
        "TimeoutError",
        "KeyError",
        "OSError",
        "ValueError",
        "ConnectionResetError",
        "ZeroDivisionError",
    }
    storm = groups["ValueError"]
    assert storm["count"] == sample_app.STORM_RECORDS  # exact, though aggregated
    timeout = groups["TimeoutError"]
    assert (timeout["category"], timeout["handled_count"]) == ("timeout", timeout["count"])
    assert (groups["KeyError"]["count"], groups["KeyError"]["handled_count"]) == (4, 0)
    assert groups["OSError"]["category"] == "resource"
    assert groups["ZeroDivisionError"]["severity"] == "critical"
    # Sample trace ids to open the failures in a tracing UI.
    assert all(len(g["samples"][0]["trace_id"]) == 32 for g in groups.values())


def test_demo_prints_a_readable_table() -> None:
    result = _demo()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("sample worker: 4 orders, 4 silent fallbacks")
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
    assert f"{sample_app.STORM_RECORDS + 14} failures in 6 groups" in result.stdout
    assert "processor: 127.0.0.1:" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_errors_are_one_line_without_traceback() -> None:
    result = subprocess.run(
        [str(FAULTLENS), "no-such-command"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("faultlens: argument COMMAND")
