"""``faultlens scan``: what breaks before any code runs — imports, syntax, entry points.

For every package (:mod:`.project`) it byte-compiles every file, imports every
module (``__main__`` modules are compiled, not run), loads every entry point of
the package's installed distribution and runs each of its console scripts with
``--help``. The work is spread over ``jobs`` worker processes
(:mod:`.scan_worker`); each import, load and run happens in a child of its own,
killed at ``timeout`` seconds. Each problem becomes a report
:class:`~faultlens_collector.detection.report.Failure` with the SDK's fingerprint
of the real exception; the same fingerprint found by several jobs (a syntax
error met by byte-compiling and by importing) is one failure with a count.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.metadata
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

from faultlens_collector.detection.project import Package
from faultlens_collector.detection.report import Failure

DEFAULT_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """``--jobs`` workers, ``--timeout`` per job, ``--ignore`` module/entry-point globs."""

    jobs: int = max(1, os.cpu_count() or 1)
    timeout: float = DEFAULT_TIMEOUT
    ignore: tuple[str, ...] = ()
    entry_points: bool = True
    #: Import every module from a clean worker (no module kept from earlier jobs).
    isolated: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of work for a worker, and how the report names what it was about."""

    payload: dict[str, Any]
    detected_by: str
    where: str


def plan(packages: Sequence[Package], settings: ScanSettings) -> list[Job]:
    """Every job for ``packages``: imports first (the slow part), then entry points,
    console scripts and byte-compilation."""
    imports: list[Job] = []
    compiles: list[Job] = []
    for package in packages:
        for module in package.modules:
            if _ignored(module.name, settings.ignore):
                continue
            compiles.append(
                Job({"kind": "compile", "path": str(module.path)}, "compile", module.name)
            )
            if module.importable:
                imports.append(
                    Job({"kind": "import", "module": module.name}, "import", module.name)
                )
    points: list[Job] = []
    if settings.entry_points:
        for distribution in sorted({p.distribution for p in packages if p.distribution}):
            points += _entry_point_jobs(distribution, settings.ignore)
    return imports + points + compiles


def _entry_point_jobs(distribution: str, ignore: tuple[str, ...]) -> list[Job]:
    try:
        entry_points = importlib.metadata.distribution(distribution).entry_points
    except importlib.metadata.PackageNotFoundError:
        return []
    jobs = []
    for point in sorted(entry_points, key=lambda p: (p.group, p.name)):
        label = f"{point.group}:{point.name}"
        if _ignored(label, ignore) or _ignored(point.value, ignore):
            continue
        payload = {"group": point.group, "name": point.name, "value": point.value}
        jobs.append(
            Job({"kind": "entry_point", **payload}, "entry_point", f"{label} = {point.value}")
        )
        if point.group == "console_scripts":
            jobs.append(
                Job({"kind": "console_script", **payload}, "console_script", f"{point.name} --help")
            )
    return jobs


def _ignored(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def scan(
    packages: Sequence[Package],
    settings: ScanSettings,
    *,
    on_result: Callable[[Job, dict[str, Any]], None] | None = None,
) -> list[Failure]:
    """Run every job of ``packages`` and return the failures found (one per fingerprint)."""
    jobs = plan(packages, settings)
    pending: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        pending.put(job)
    worker_settings = {
        "paths": sorted({str(p.root) for p in packages if p.root is not None}),
        "in_app": sorted({p.name for p in packages}),
        "preload": [],
        "timeout": settings.timeout,
        "warm": not settings.isolated,
        "cold": [],
    }
    found: dict[str, Failure] = {}
    lock = threading.Lock()

    def record(job: Job, result: dict[str, Any]) -> None:
        if on_result is not None:
            on_result(job, result)
        if result.get("ok"):
            return
        with lock:
            _merge(found, job, result)

    threads = [
        threading.Thread(target=_feed, args=(worker_settings, pending, record), daemon=True)
        for _ in range(max(1, min(settings.jobs, len(jobs))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return list(found.values())


def _merge(found: dict[str, Failure], job: Job, result: dict[str, Any]) -> None:
    fingerprint = str(result["fingerprint"])
    failure = found.get(fingerprint)
    if failure is None:
        found[fingerprint] = Failure(
            fingerprint=fingerprint,
            exception_type=str(result["exception_type"]),
            message=str(result["message"]),
            category=str(result["category"]),
            severity=str(result["severity"]),
            stacktrace=str(result.get("stacktrace", "")),
            detected_by=job.detected_by,
            where=job.where,
        )
        return
    failure.count += 1
    if job.detected_by not in failure.detected_by.split(", "):
        failure.detected_by += f", {job.detected_by}"
    if job.where not in failure.where.split(", "):
        failure.where += f", {job.where}"


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from faultlens_collector.detection.scan_worker import main; main()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        self._stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        self.hello = self._ask(settings)

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self._stdin.write(json.dumps(message) + "\n")
        self._stdin.flush()
        line = self._stdout.readline()
        if not line:
            raise EOFError("the scan worker ended")
        return dict(json.loads(line))

    def run(self, job: Job) -> dict[str, Any]:
        return self._ask(job.payload)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stdout.close()


def _feed(
    settings: dict[str, Any],
    pending: queue.Queue[Job],
    record: Callable[[Job, dict[str, Any]], None],
) -> None:
    """Hand jobs to one worker until none is left; a worker that dies is replaced and
    its job reported as a crash."""
    worker: _Worker | None = None
    try:
        while True:
            try:
                job = pending.get_nowait()
            except queue.Empty:
                return
            if worker is None:
                worker = _Worker(settings)
            current = worker
            try:
                result = current.run(job)
                if result.pop("restart", False):
                    # The module started a thread when kept: never keep it again.
                    settings["cold"].append(job.payload["module"])
                    current.close()
                    worker = None
            except (EOFError, OSError, ValueError) as exc:
                current.close()
                worker = None
                result = {
                    "ok": False,
                    "fingerprint": _crash_fingerprint(job),
                    "exception_type": "faultlens.WorkerCrash",
                    "message": f"the scan worker died on this job: {exc}",
                    "category": "resource",
                    "severity": "critical",
                }
            record(job, result)
    finally:
        if worker is not None:
            worker.close()


def _crash_fingerprint(job: Job) -> str:
    from faultlens.shared import hash_parts

    return hash_parts(("faultlens.scan", "worker", job.detected_by, job.where))
