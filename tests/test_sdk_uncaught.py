"""Uncaught exceptions are recorded without faultlens replacing ``sys.excepthook``.

``tests/instrumented/uncaught_app.py`` runs each case in its own process on
every interpreter of :data:`interpreters.VERSIONS` (the suite's 3.11: threads
through a chained ``threading.excepthook``; pyenv's 3.12 and 3.13: threads seen
by the ``sys.monitoring`` engine), exporting to one real OTLP receiver through
a batch span processor that would hold spans for 60 s. Every process has ended
before the checks: whatever it exported has arrived.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from interpreters import ZeroCode, instrumented_environment, zero_code
from otlp_receiver import OtlpReceiver, failure_events

__all__ = ["zero_code"]

PROGRAMS = Path(__file__).resolve().parent / "instrumented"
CASES = (
    "bare",
    "install_first",
    "no_shutdown",
    "hook_before",
    "hook_after",
    "keyboard",
    "system_exit",
    "console",
    "interactive",
    "thread_hook_before",
    "thread_hook_after",
    "thread_captured",
    "instrumented",
)
UNCAUGHT = {
    "failure.source": "excepthook",
    "failure.severity": "critical",
    "failure.handled": False,
}
NO_FAULTLENS_FRAME: dict[str, Any] = {"faultlens": []}


@dataclass
class Run:
    returncode: int
    stdout: list[dict[str, Any]]
    stderr: str
    events: list[dict[str, Any]]

    @property
    def observed(self) -> dict[str, Any]:
        (observed,) = [line["observed"] for line in self.stdout if "observed" in line]
        return dict(observed)

    @property
    def monitoring(self) -> bool:
        return tuple(self.observed["python"]) >= (3, 12)

    def hooks(self) -> list[dict[str, Any]]:
        return [line for line in self.stdout if "hook" in line]

    def traceback(self) -> list[str]:
        """The last traceback printed on stderr, without the lines that follow it."""
        lines = self.stderr[self.stderr.rindex("Traceback") :].splitlines()
        end = next(i for i, line in enumerate(lines) if not line.startswith(("Traceback", " ")))
        return lines[: end + 1]

    def failures(self) -> list[tuple[str, str, bool, str]]:
        return [
            (
                e["exception.type"],
                e["failure.source"],
                e["failure.handled"],
                e["failure.severity"],
            )
            for e in self.events
        ]


def _run(zero_code: ZeroCode, receiver: OtlpReceiver, case: str) -> Run:
    service = f"uncaught-{case}-{zero_code.version}"
    command = [str(zero_code.python), str(PROGRAMS / "uncaught_app.py"), case]
    if case == "interactive":
        command.insert(1, "-i")  # the REPL reads end-of-file from stdin and exits
    if case == "instrumented":
        command.insert(0, str(zero_code.script("opentelemetry-instrument")))
    env = instrumented_environment(receiver.endpoint, service, OTEL_BSP_SCHEDULE_DELAY="60000")
    done = subprocess.run(
        command,
        cwd=PROGRAMS,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    spans = [span for resource, span in receiver.spans() if resource["service.name"] == service]
    return Run(
        done.returncode,
        [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")],
        done.stderr,
        failure_events(spans),
    )


@pytest.fixture(scope="session")
def runs(zero_code: ZeroCode) -> dict[str, Run]:
    with OtlpReceiver() as receiver, ThreadPoolExecutor(max_workers=3) as pool:
        done = pool.map(lambda case: _run(zero_code, receiver, case), CASES)
        return dict(zip(CASES, done, strict=True))


FAULTLENS_CASES = [case for case in CASES if case != "bare"]


@pytest.mark.parametrize("case", FAULTLENS_CASES)
def test_sys_excepthook_is_left_alone(runs, case) -> None:
    run = runs[case]
    assert run.observed["sys_hook_untouched"] is True, run.stderr
    # 3.12+: threads are seen through sys.monitoring; 3.10/3.11 chain threading.excepthook
    assert run.observed["thread_hook_untouched"] is run.monitoring
    # no FAULTLENS_INSTRUMENT target: the engine holds its tool id with no global event
    assert run.observed["global_events"] == (0 if run.monitoring else None)


@pytest.mark.parametrize(
    "case", ["install_first", "no_shutdown", "hook_before", "hook_after", "instrumented"]
)
def test_the_uncaught_exception_is_exported_once_and_the_exit_is_unchanged(runs, case) -> None:
    run, bare = runs[case], runs["bare"]
    assert (run.returncode, bare.returncode) == (1, 1)
    assert run.traceback() == bare.traceback()
    assert run.traceback()[-1] == "RuntimeError: config store unreachable"
    uncaught = [e for e in run.events if e["exception.type"] == "RuntimeError"]
    assert len(uncaught) == 1, run.events
    assert uncaught[0].items() >= UNCAUGHT.items()
    assert uncaught[0]["_status"] == 2  # ERROR on the faultlens.failure span


def test_install_before_the_provider_and_a_provider_that_never_shuts_down(runs) -> None:
    # faultlens.install() before the TracerProvider exists: an atexit handler would run
    # after the provider's shutdown and lose the failure; shutdown_on_exit=False: the
    # 60 s batch delay holds it, only faultlens' flush gets it out
    for case in ("install_first", "no_shutdown"):
        assert runs[case].failures() == [("RuntimeError", "excepthook", False, "critical")], runs[
            case
        ].stderr


@pytest.mark.parametrize("case", ["hook_before", "hook_after"])
def test_the_programs_hook_runs_and_sees_no_faultlens_frame(runs, case) -> None:
    assert runs[case].hooks() == [{"hook": "sys", "type": "RuntimeError", **NO_FAULTLENS_FRAME}]


def test_keyboard_interrupt_and_system_exit_are_not_failures(runs) -> None:
    marker = [("LookupError", "manual", True, "low")]
    assert runs["keyboard"].returncode == -2  # died of SIGINT, as without faultlens
    assert runs["keyboard"].traceback()[-1] == "KeyboardInterrupt"
    assert runs["system_exit"].returncode == 3
    for case in ("keyboard", "system_exit"):
        assert runs[case].failures() == marker, runs[case].stderr


def test_an_error_an_embedded_console_printed_is_not_uncaught(runs) -> None:
    # code.InteractiveInterpreter stores the error in sys.last_value too; the program
    # then ends normally
    run = runs["console"]
    assert run.returncode == 0
    assert "ZeroDivisionError: division by zero" in run.stderr
    assert run.failures() == [("LookupError", "manual", True, "low")]


def test_an_interactive_session_is_skipped(runs) -> None:
    # python -i: the error is printed, the REPL starts (and reads end-of-file); the REPL
    # stores every error it prints in sys.last_value, so none of them is taken as uncaught
    run = runs["interactive"]
    assert "RuntimeError: config store unreachable" in run.stderr
    assert run.failures() == [("LookupError", "manual", True, "low")]


@pytest.mark.parametrize("case", ["thread_hook_before", "thread_hook_after"])
def test_a_thread_dying_is_recorded_once_and_its_hook_runs(runs, case) -> None:
    run = runs[case]
    assert run.returncode == 0
    assert "ZeroDivisionError: ratio in a thread" in run.stderr
    hooks = run.hooks()
    assert [(h["hook"], h["type"]) for h in hooks] == [
        ("threading", "ZeroDivisionError"),
        ("threading", "SystemExit"),
    ]
    thread_failure = [("ZeroDivisionError", "excepthook", False, "critical")]
    if run.monitoring:
        assert run.observed["thread_hook_untouched"] is True
        assert all(h["faultlens"] == [] for h in hooks)
        assert run.failures() == thread_failure
    elif case == "thread_hook_before":
        # 3.10/3.11: faultlens' chained hook calls the program's: one frame of it below
        assert all(Path(f).name == "_excepthooks.py" for h in hooks for f in h["faultlens"])
        assert run.failures() == thread_failure
    else:
        # 3.10/3.11: the program's own threading.excepthook replaced faultlens' one
        assert run.failures() == []


def test_a_thread_failure_recorded_already_counts_once(runs) -> None:
    run = runs["thread_captured"]
    assert run.returncode == 0
    assert run.failures() == [("ZeroDivisionError", "decorator", False, "medium")]


def test_under_opentelemetry_instrument_threads_and_main_thread(runs) -> None:
    run = runs["instrumented"]
    assert sorted(run.failures()) == [
        ("RuntimeError", "excepthook", False, "critical"),
        ("ZeroDivisionError", "excepthook", False, "critical"),
    ]
