"""Real libraries' own test suites, plain and under ``opentelemetry-instrument`` with ``module:*``.

Each :class:`Suite` is a pinned sdist from PyPI (downloaded with ``pip download``
by the interpreter that runs it, unpacked into a directory of the caller's
choice, reused while it is there). :func:`run_suite` runs its tests with
pytest, either plain or under the real ``opentelemetry-instrument`` with every
module of the library named as ``module:*``, and returns each test's outcome
(from pytest's JUnit XML) and the wall time. Used by
tests/test_library_suites.py (outcomes identical test by test) and
benchmarks/bench_instrument.py (wall-time ratio).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

#: The pytest plugin that times a session without start-up (``-p faultlens_suite_clock``).
CLOCK_PLUGINS = Path(__file__).resolve().parent / "suite_clock"


@dataclass(frozen=True)
class Suite:
    """A library whose sdist ships its tests."""

    name: str  #: the distribution's name on PyPI
    version: str
    packages: tuple[str, ...]  #: import packages whose modules are all named ``module:*``
    tests: str  #: the tests' directory inside the sdist
    #: Whether its tests catch the library's exceptions in test code (so failures are
    #: recorded): toolz's tests catch them in ``toolz.utils.raises``, itself named code.
    records: bool = True
    #: Test paths left out: they need packages outside pytest (pygments' contrast
    #: tests import ``wcag_contrast_ratio``).
    ignore: tuple[str, ...] = ()


#: more-itertools: ``numeric_range`` and friends use exceptions for control flow (item 6);
#: toolz: curried functions, ``functools`` wrappers and pickled closures everywhere;
#: pygments: ~330 modules (lexers, styles of constants only, plugins found at run time),
#: a command line whose tests check its stderr, and a suite long enough (~50 s) that a
#: fixed start-up cost does not hide what runs per test.
SUITES = (
    Suite("more-itertools", "10.5.0", ("more_itertools",), "tests"),
    Suite("toolz", "1.0.0", ("toolz",), "toolz/tests", records=False),
    Suite("pygments", "2.18.0", ("pygments",), "tests", ignore=("tests/contrast",)),
)


@dataclass
class Result:
    """One run of a suite."""

    outcomes: dict[str, str]  #: test id -> passed / failed / error / skipped
    seconds: float
    returncode: int
    output: str
    #: CPU seconds of the run (user + system), exact when one run is waited for at a time
    cpu: float = 0.0
    #: CPU seconds of the pytest session alone (collection and tests, no start-up), when
    #: the run was started with ``clock``
    session_cpu: float | None = None


def fetch(suite: Suite, python: Path, into: Path) -> Path:
    """The unpacked sdist of ``suite`` under ``into`` (downloaded on first use)."""
    into.mkdir(parents=True, exist_ok=True)
    found = [path for path in into.iterdir() if path.is_dir() and _matches(path.name, suite)]
    if found:
        return found[0]
    requirement = f"{suite.name}=={suite.version}"
    _pip(python, "download", "--no-deps", "--no-binary", ":all:", "-d", str(into), requirement)
    (archive,) = [path for path in into.glob("*.tar.gz") if _matches(path.name, suite)]
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")  # type: ignore[call-arg,unused-ignore]
    (root,) = [path for path in into.iterdir() if path.is_dir() and _matches(path.name, suite)]
    return root


def _matches(name: str, suite: Suite) -> bool:
    normalized = name.replace("_", "-").lower()
    return normalized.startswith(f"{suite.name}-{suite.version}")


#: A target that does not exist: its one warning shows the instrumentor looked at the library.
PROBE = "faultlens_probe_missing"


def targets(suite: Suite, root: Path) -> str:
    """``module:*`` for every module of the suite's packages (tests left out), and a probe."""
    specs = [f"{suite.packages[0]}:{PROBE}"]
    for package in suite.packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).with_suffix("")
            if "tests" in relative.parts:
                continue
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            specs.append(".".join(parts) + ":*")
    return ",".join(specs)


def command(
    suite: Suite, root: Path, python: Path, report: Path, *, instrumented: bool, clock: bool = False
) -> list[str]:
    """The pytest command line of one run."""
    pytest = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging", "-s"]
    pytest += [f"--junitxml={report}", "-o", "junit_family=xunit2", suite.tests]
    pytest += [f"--ignore={path}" for path in suite.ignore]
    if clock:
        pytest[3:3] = ["-p", "faultlens_suite_clock"]
    if instrumented:
        return [str(python.parent / "opentelemetry-instrument"), *pytest]
    return pytest


def environment(
    suite: Suite,
    root: Path,
    *,
    instrumented: bool,
    endpoint: str | None = None,
    targets_on: bool = True,
    faultlens_on: bool = True,
    clock: Path | None = None,
) -> dict[str, str]:
    """The run's environment: the sdist first on the path; telemetry to ``endpoint`` (OTLP)
    or nowhere. ``targets_on=False`` runs under ``opentelemetry-instrument`` without
    ``FAULTLENS_INSTRUMENT``; ``faultlens_on=False`` leaves faultlens out of it
    altogether (what the command itself costs). ``clock``: the session's CPU time is
    written there (:data:`CLOCK_PLUGINS`)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "FAULTLENS_", "PYTHON", "PYTEST_"))
    }
    env.update(PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    if clock is not None:
        env.update(PYTHONPATH=f"{root}{os.pathsep}{CLOCK_PLUGINS}", SUITE_CLOCK_FILE=str(clock))
    if instrumented and not faultlens_on:
        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = "faultlens"
    if instrumented:
        if targets_on:
            env["FAULTLENS_INSTRUMENT"] = targets(suite, root)
        env.update(
            OTEL_TRACES_EXPORTER="otlp" if endpoint else "none",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_SERVICE_NAME=f"suite-{suite.name}",
        )
        if endpoint:
            env.update(
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{endpoint}", OTEL_EXPORTER_OTLP_INSECURE="true"
            )
    return env


def start(
    suite: Suite,
    root: Path,
    python: Path,
    report: Path,
    *,
    instrumented: bool,
    endpoint: str | None = None,
    targets_on: bool = True,
    faultlens_on: bool = True,
    clock: Path | None = None,
) -> Run:
    """Start one run (plain and instrumented runs may go side by side).

    ``clock``: a file for the session's CPU time (:attr:`Result.session_cpu`)."""
    if clock is not None:
        clock.unlink(missing_ok=True)
    env = environment(
        suite,
        root,
        instrumented=instrumented,
        endpoint=endpoint,
        targets_on=targets_on,
        faultlens_on=faultlens_on,
        clock=clock,
    )
    return Run(
        subprocess.Popen(
            command(
                suite, root, python, report, instrumented=instrumented, clock=clock is not None
            ),
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        report,
        time.perf_counter(),
        clock,
    )


@dataclass
class Run:
    """A suite run under way."""

    process: subprocess.Popen[str]
    report: Path
    started: float
    clock: Path | None = None

    def wait(self, timeout: float = 900) -> Result:
        before = _children_cpu()
        output, _ = self.process.communicate(timeout=timeout)
        seconds = time.perf_counter() - self.started
        outcomes = outcomes_of(self.report) if self.report.exists() else {}
        cpu = _children_cpu() - before
        session = None
        if self.clock is not None and self.clock.exists():
            session = float(self.clock.read_text())
        return Result(outcomes, seconds, self.process.returncode, output, cpu, session)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(
    suite: Suite,
    root: Path,
    python: Path,
    report: Path,
    *,
    instrumented: bool,
    targets_on: bool = True,
    faultlens_on: bool = True,
) -> Result:
    """Run the suite to completion (alone: its ``cpu`` is exact), timing its session."""
    return start(
        suite,
        root,
        python,
        report,
        instrumented=instrumented,
        targets_on=targets_on,
        faultlens_on=faultlens_on,
        clock=report.with_suffix(".clock"),
    ).wait()


def outcomes_of(report: Path) -> dict[str, str]:
    """Test id -> outcome, from a JUnit XML report."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
                break
        outcomes[test] = outcome
    return outcomes


def pip_install(python: Path, *requirements: str) -> None:
    """Make sure ``requirements`` are installed for ``python`` (quiet; raises on failure)."""
    _pip(python, "install", *requirements)


def _pip(python: Path, command: str, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", command, "-q", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip {command} {' '.join(args)} failed:\n{done.stderr}")


def suite_pytest() -> str:
    """The pytest requirement matching the suite's own (so outcomes are comparable)."""
    import pytest

    return f"pytest=={pytest.__version__}"


if __name__ == "__main__":  # pragma: no cover - a manual check: python library_suites.py DIR
    for item in SUITES:
        where = fetch(item, Path(sys.executable), Path(sys.argv[1]))
        print(item.name, where, targets(item, where))
