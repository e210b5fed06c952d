"""Shared by the reliability scenarios and ``benchmarks/soak.py``: processes, memory, figures."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.processor_support import ServeProcess


def proc_status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory field in KiB (``VmHWM``: peak RSS, ``VmRSS``: now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def peak_rss_mib(serve: ServeProcess) -> float:
    """Peak resident memory of a running ``faultlens serve`` so far, in MiB."""
    assert serve.process is not None
    return proc_status_kib(serve.process.pid, "VmHWM") / 1024


def rss_mib(serve: ServeProcess) -> float:
    """Resident memory of a running ``faultlens serve`` now, in MiB."""
    assert serve.process is not None
    return proc_status_kib(serve.process.pid, "VmRSS") / 1024


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def server_output(serve: ServeProcess, settle: float = 0.2) -> str:
    """What ``faultlens serve`` wrote to stderr so far (after ``settle`` s for the reader)."""
    time.sleep(settle)
    return "".join(serve.output)


def report(title: str, figures: Mapping[str, Any]) -> None:
    """Print a scenario's figures (seen with ``pytest -s`` and in the soak output)."""
    print(f"\n[{title}] " + json.dumps(figures, sort_keys=False, default=str))


def stored_occurrences(address: str, token: str | None = None) -> int:
    """The sum of every group's count in a running processor."""
    from faultlens_collector.control.client import ControlClient

    from tests.processor_support import all_groups

    with ControlClient(address, timeout=30, token=token) as client:
        return sum(group.count for group in all_groups(client).values())
