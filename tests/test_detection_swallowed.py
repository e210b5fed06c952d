"""Swallowed exceptions on Python 3.12+ (``sys.monitoring``), through ``faultlens run``.

The project of ``run_support`` under a 3.12+ interpreter: ``except Exception: pass``
around a division by zero firing 500 times is one group of 500 (severity high: a
broad handler); a ``KeyError`` turned into a default is a group (low: a narrow
handler); a bare ``except:`` is critical; what is logged or re-raised is not
swallowed; the same holds in a child process (``python -m proj.work``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from faultlens_collector.detection.report import schema

from tests.interpreters import environment
from tests.run_support import make_project

BARE = """

def bare():
    try:
        raise OSError("disk")
    except:  # noqa: E722
        pass


bare()
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # The suite's own interpreter when it is 3.12+, else pyenv's 3.12 (tests/interpreters.py).
    python = Path(sys.executable) if sys.version_info >= (3, 12) else environment("3.12").python
    root = make_project(tmp_path_factory.mktemp("swallowed"), extra=BARE)
    path = root / "report.json"
    result = subprocess.run(
        [
            str(python.with_name("faultlens")),
            "run",
            "--report",
            str(path),
            "--",
            str(python),
            "job.py",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 1, result.stderr
    return json.loads(path.read_text())


def groups(report: dict, exception_type: str) -> list[dict]:
    return [f for f in report["failures"] if f["exception_type"] == exception_type]


@pytest.mark.slow
def test_a_broad_handler_firing_500_times_is_one_group_of_500_in_each_process(report) -> None:
    jsonschema.validate(report, schema())
    swallowed = [f for f in groups(report, "ZeroDivisionError") if f["count"] == 500]
    assert len(swallowed) == 2  # the parent's and the child's (python -m proj.work)
    for group in swallowed:
        assert group["silent"] is True
        assert group["severity"] == "high"
        assert group["handled_count"] == 500


@pytest.mark.slow
def test_a_key_error_turned_into_a_default_is_a_low_group(report) -> None:
    lookups = groups(report, "KeyError")
    assert [g["count"] for g in lookups] == [1, 1]
    assert {g["severity"] for g in lookups} == {"low"}


@pytest.mark.slow
def test_a_bare_except_is_critical(report) -> None:
    (bare,) = groups(report, "OSError")  # only the parent runs bare() (the child exits first)
    assert bare["severity"] == "critical"


@pytest.mark.slow
def test_logged_and_reraised_exceptions_are_not_swallowed(report) -> None:
    # parse(): logged with exc_info in each process: one occurrence each, low (logging).
    parsed = groups(report, "ValueError")
    assert sorted(g["count"] for g in parsed) == [1, 1]
    # reraised(): the re-raise is caught by main() and logged: counted once per process,
    # never as swallowed by reraised() itself.
    zero_once = [g for g in groups(report, "ZeroDivisionError") if g["count"] != 500]
    assert [g["count"] for g in zero_once] == [1, 1]
    assert all(g["severity"] != "high" for g in zero_once)
    (escaped,) = groups(report, "RuntimeError")
    assert escaped["silent"] is False
