"""The repository's layout promises: the suite collects with plain ``pytest`` as with
``python -m pytest``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_plain_pytest_collects_modules_that_import_test_helpers(tmp_path: Path) -> None:
    # `pytest` (the script) does not put the working directory on sys.path; the modules
    # below import `tests.*` helpers and failed to collect before pyproject set pythonpath.
    pytest_script = Path(sys.executable).with_name("pytest")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [
            str(pytest_script),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_processor_writer.py",
            "tests/reliability/test_reliability_fuzz.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower(), result.stdout
