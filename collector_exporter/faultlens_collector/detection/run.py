"""``faultlens run``: a command with capture on in every Python process it starts.

1. An embedded processor starts on a free loopback port with a temporary store
   (``store``: a file that is kept), forwarding to a team's processor with ``send``.
2. The command runs with :mod:`.bootstrap` first on ``PYTHONPATH``: every Python
   process it starts — the command itself, ``subprocess`` children, a shell
   script's, ``multiprocessing`` workers — starts capture (:mod:`.child`) and
   reports to the embedded processor over OTLP.
3. What is instrumented: ``instrument`` (``FAULTLENS_INSTRUMENT`` syntax), else
   the project around the current folder (:mod:`.project`): its packages count as
   in-app (``FAULTLENS_IN_APP``); on Python 3.12+ their code is watched for
   swallowed exceptions (:mod:`.swallowed`, ``sys.monitoring``: nothing wrapped);
   on 3.10/3.11 every function of their modules is wrapped (``module:*``: what
   escapes a function is recorded). faultlens' own packages are never instrumented.
4. When the command ends, the groups the processor holds become the report.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from faultlens_collector.detection.child import ENDPOINT_ENV, SERVICE_ENV, SWALLOWED_ENV
from faultlens_collector.detection.project import Project, find_project
from faultlens_collector.detection.report import Failure
from faultlens_collector.groups.model import Group, primary_service
from faultlens_collector.groups.store import GroupQuery
from faultlens_collector.ingest.forward import ForwardSettings
from faultlens_collector.processor.server import Processor, ProcessorSettings
from faultlens_collector.report import iso_time

#: Packages never instrumented: faultlens itself.
_OWN: Final = frozenset({"faultlens", "faultlens_collector"})


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What ``faultlens run`` was asked to do."""

    command: Sequence[str]
    instrument: str | None = None
    store: Path | None = None
    send: str | None = None
    send_headers: tuple[tuple[str, str], ...] = ()
    cwd: Path | None = None
    #: The command's standard output goes to this process's standard error (``run
    #: --json``: stdout holds the report only).
    stdout_to_stderr: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """The command's exit status and the failure groups it produced."""

    status: int
    failures: list[Failure]
    targets: str
    in_app: tuple[str, ...]


def targets_for(settings: RunSettings, project: Project | None) -> tuple[str, tuple[str, ...]]:
    """The ``FAULTLENS_INSTRUMENT`` value and the in-app package prefixes."""
    if settings.instrument is not None:
        entries = [e.strip() for e in settings.instrument.split(",") if e.strip()]
        kept = [e for e in entries if e.split(":")[0].split(".")[0] not in _OWN]
        named = tuple(sorted({entry.split(":")[0].split(".")[0] for entry in kept}))
        return ",".join(kept), named
    if project is None:
        return "", ()
    modules = [
        module
        for package in project.packages
        for module in package.modules
        if module.importable and package.name not in _OWN
    ]
    packages = tuple(sorted({module.name.split(".")[0] for module in modules}))
    if sys.version_info >= (3, 12):
        return "", packages  # watched for swallowed exceptions by sys.monitoring, not wrapped
    return ",".join(f"{m.name}:*" for m in modules if _defines_functions(m.path)), packages


def _defines_functions(path: Path) -> bool:
    try:
        return "def " in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def run(settings: RunSettings) -> Outcome:
    """Run the command under capture (see the module docstring)."""
    cwd = settings.cwd or Path.cwd()
    targets, in_app = targets_for(settings, find_project(cwd))
    with tempfile.TemporaryDirectory(prefix="faultlens-run-") as scratch:
        store = settings.store or Path(scratch) / "faultlens.db"
        forward = (
            ForwardSettings(target=settings.send, headers=settings.send_headers)
            if settings.send
            else None
        )
        processor = Processor(
            ProcessorSettings(store_path=store, listen="127.0.0.1:0", forward=forward)
        )
        processor.start()
        try:
            bootstrap = Path(scratch) / "bootstrap"
            _install_bootstrap(bootstrap)
            environment = _environment(
                bootstrap, processor.address, targets, in_app, settings.command
            )
            status = _execute(
                settings.command, environment, cwd, stdout_to_stderr=settings.stdout_to_stderr
            )
            assert processor.store is not None
            groups = list(processor.store.iter_groups(GroupQuery(sort="count")))
        finally:
            processor.stop(grace=2)
    return Outcome(status, [_failure(group) for group in groups], targets, in_app)


def _install_bootstrap(folder: Path) -> None:
    folder.mkdir()
    source = resources.files("faultlens_collector.detection.bootstrap")
    (folder / "sitecustomize.py").write_text(
        source.joinpath("sitecustomize.py").read_text(encoding="utf-8"), encoding="utf-8"
    )


def _environment(
    bootstrap: Path, address: str, targets: str, in_app: tuple[str, ...], command: Sequence[str]
) -> dict[str, str]:
    env = dict(os.environ)
    # Only the bootstrap: a Python of another environment, which cannot import
    # faultlens, runs untouched (its packages are never mixed in).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(bootstrap), env.get("PYTHONPATH")]))
    env[ENDPOINT_ENV] = address
    env[SERVICE_ENV] = Path(command[0]).name or "faultlens-run"
    env["FAULTLENS_INSTRUMENT"] = targets
    if in_app:
        env["FAULTLENS_IN_APP"] = ",".join(
            [*filter(None, env.get("FAULTLENS_IN_APP", "").split(",")), *in_app]
        )
        if sys.version_info >= (3, 12):
            env[SWALLOWED_ENV] = ",".join(in_app)
    env.pop("FAULTLENS_DISABLED", None)
    return env


def _execute(
    command: Sequence[str], env: dict[str, str], cwd: Path, *, stdout_to_stderr: bool = False
) -> int:
    """Run ``command``; SIGINT/SIGTERM are passed on to it. Its exit status (128 + N
    for a signal N, as a shell reports it)."""
    program = shutil.which(command[0], path=env.get("PATH")) or command[0]
    sys.stdout.flush()
    stdout = sys.stderr.fileno() if stdout_to_stderr else None
    child = subprocess.Popen([program, *command[1:]], env=env, cwd=cwd, stdout=stdout)
    previous = {
        signum: signal.signal(signum, lambda s, _f: child.send_signal(s))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    time.sleep(0)  # let the processor's last commits settle before reading
    return 128 - code if code < 0 else code


def _failure(group: Group) -> Failure:
    return Failure(
        fingerprint=group.fingerprint,
        exception_type=group.exception_type,
        message=group.message,
        category=group.category,
        severity=group.severity,
        count=group.count,
        handled_count=group.handled_count,
        stacktrace=group.stacktrace,
        detected_by="run",
        where=primary_service(group.service_counts),
        first_seen=iso_time(group.first_seen),
        last_seen=iso_time(group.last_seen),
        services=dict(group.service_counts),
        span_names=list(group.span_names),
    )
