"""A pytest plugin for benchmarks: the CPU time of a test session, start-up left out.

Loaded with ``-p faultlens_suite_clock`` (this directory on ``PYTHONPATH``) by
``tests/library_suites.py`` when a run is timed. At the end of the session it
writes the process CPU seconds (user + system) spent from ``pytest_sessionstart``
to ``pytest_sessionfinish`` to the file named by ``SUITE_CLOCK_FILE``: the time
of collecting and running the tests, without the interpreter's start-up (nor,
under ``opentelemetry-instrument``, the command's own start-up, which runs
before pytest does).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_started: list[float] = []


def pytest_sessionstart(session: object) -> None:
    _started.append(time.process_time())


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    target = os.environ.get("SUITE_CLOCK_FILE")
    if target and _started:
        Path(target).write_text(f"{time.process_time() - _started[0]:.6f}\n")
