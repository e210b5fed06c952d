"""Runs of ``app_workload.py`` (an instrumented program) against live, dead or no endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.otlp_receiver import OtlpReceiver
from tests.reliability.hops import closed_port

WORKLOAD = Path(__file__).with_name("app_workload.py")


@dataclass(frozen=True)
class AppRun:
    """What one run of the workload reported, and how it ended."""

    mode: str
    spans: int
    loop_seconds: float
    shutdown_seconds: float
    peak_rss_mib: float
    unexpected: int
    declined: int
    returncode: int
    stderr: str

    @property
    def micros_per_span(self) -> float:
        return self.loop_seconds / self.spans * 1e6


def run_app(
    mode: str,
    spans: int,
    *,
    payload: int = 1024,
    export_timeout: float = 1.0,
    shutdown: bool = True,
    timeout: float = 120,
) -> AppRun:
    """Run the workload with ``mode`` ``none`` (no exporter), ``up`` (both exporters to live
    receivers) or ``down`` (both to closed ports); ``export_timeout`` bounds each export;
    without ``shutdown`` the program leaves without flushing."""
    receivers: list[OtlpReceiver] = []
    args: list[str] = []
    if mode == "up":
        receivers = [OtlpReceiver().__enter__(), OtlpReceiver().__enter__()]
        args = ["--otlp", receivers[0].endpoint, "--faultlens", receivers[1].endpoint]
    elif mode == "down":
        args = ["--otlp", f"127.0.0.1:{closed_port()}", "--faultlens", f"127.0.0.1:{closed_port()}"]
    try:
        result = subprocess.run(
            [
                sys.executable,
                str(WORKLOAD),
                f"--spans={spans}",
                f"--payload={payload}",
                f"--timeout={export_timeout}",
                *([] if shutdown else ["--skip-shutdown"]),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        for receiver in receivers:
            receiver.__exit__(None, None, None)
    lines = result.stdout.strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return AppRun(
        mode=mode,
        spans=spans,
        loop_seconds=float(report.get("loop_seconds", 0.0)),
        shutdown_seconds=float(report.get("shutdown_seconds", 0.0)),
        peak_rss_mib=float(report.get("peak_rss_mib", 0.0)),
        unexpected=int(report.get("unexpected", -1)),
        declined=int(report.get("declined", -1)),
        returncode=result.returncode,
        stderr=result.stderr,
    )
