"""The real ``opentelemetry-instrument`` command over small programs, spans read back over OTLP.

They run on every interpreter of ``interpreters.VERSIONS`` (the suite's own, 3.12,
3.13). Every run is started at once by one module-scoped fixture (each costs about a
second of interpreter start-up) against one OTLP receiver; each run has its own
``service.name``. The programs live in ``tests/instrumented/`` and ``examples/``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from interpreters import ZeroCode, instrumented_environment
from otlp_receiver import OtlpReceiver, failure_events

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "instrumented"
STATUS_ERROR = 2

KIND_TARGETS = ",".join(
    [
        "kinds_targets:plain",
        "kinds_targets:coro",
        "kinds_targets:gen",
        "kinds_targets:agen",
        "kinds_targets:charge",
        "kinds_targets:Store.method",
        "kinds_targets:Store.static",
        "kinds_targets:Store.klass",
        "kinds_targets:Cart.*",
        "kinds_more:*",
    ]
)
BAD_TARGETS = ["kinds_targets:nope", "no_such_module_zz:run", "not-a-target", "kinds_app:main"]
EXAMPLE_TARGETS = "order_worker.jobs:*,order_worker.inventory:Inventory.*"


@dataclass
class Run:
    result: subprocess.CompletedProcess[str]
    spans: list[Any]

    def events(self) -> list[dict[str, Any]]:
        """Every faultlens failure event, with its span's name and status code added."""
        return failure_events(self.spans)

    def by_type(self) -> dict[str, dict[str, Any]]:
        events = self.events()
        table = {e["exception.type"]: e for e in events}
        assert len(table) == len(events), events  # one event per failure
        return table


@pytest.fixture(scope="module")
def runs(zero_code: ZeroCode) -> dict[str, Run]:
    instrument, python = str(zero_code.script("opentelemetry-instrument")), str(zero_code.python)
    kinds = [instrument, python, str(PROGRAMS / "kinds_app.py")]
    plans: dict[str, tuple[list[str], Path, dict[str, str]]] = {
        "kinds": (
            kinds,
            PROGRAMS,
            {"FAULTLENS_INSTRUMENT": ",".join([KIND_TARGETS, *BAD_TARGETS])},
        ),
        "otel-disabled": (
            kinds,
            PROGRAMS,
            {
                "FAULTLENS_INSTRUMENT": KIND_TARGETS,
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "faultlens",
            },
        ),
        "faultlens-disabled": (
            kinds,
            PROGRAMS,
            {"FAULTLENS_INSTRUMENT": KIND_TARGETS, "FAULTLENS_DISABLED": "true"},
        ),
        "example": (
            [instrument, python, "-m", "order_worker"],
            ROOT / "examples",
            {"FAULTLENS_INSTRUMENT": EXAMPLE_TARGETS},
        ),
    }
    with OtlpReceiver() as receiver:
        started = {
            name: subprocess.Popen(
                command,
                cwd=cwd,
                env=instrumented_environment(receiver.endpoint, name, **extra),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, (command, cwd, extra) in plans.items()
        }
        results = {}
        for name, process in started.items():
            stdout, stderr = process.communicate(timeout=120)
            results[name] = subprocess.CompletedProcess(
                process.args, process.returncode, stdout, stderr
            )
        # Every run exports at least one span ("handle request" or a failure) before exiting.
        receiver.wait_for(
            lambda: {res["service.name"] for res, _ in receiver.spans()} >= set(plans)
        )
        spans: dict[str, list[Any]] = {name: [] for name in plans}
        for resource, span in receiver.spans():
            spans[resource["service.name"]].append(span)
    return {name: Run(results[name], spans[name]) for name in plans}


def _ok(run: Run) -> dict[str, bool]:
    assert run.result.returncode == 0, run.result.stderr
    wrapped: dict[str, bool] = json.loads(run.result.stdout.splitlines()[-1])
    return wrapped


@pytest.fixture(scope="module")
def engine(zero_code: ZeroCode) -> bool:
    """True where targets are watched by the sys.monitoring engine (3.12+), not wrapped."""
    done = subprocess.run(
        [str(zero_code.python), "-c", "import sys; print(sys.version_info >= (3, 12))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip() == "True"


def test_every_kind_of_target_imported_after_start_up_is_recorded(runs, engine) -> None:
    run = runs["kinds"]
    assert _ok(run) == {
        "plain": True,
        "Store.static": True,
        "Cart.checkout": True,
        "kinds_more.parse": True,
        "kinds_more.join": False,  # imported into kinds_more, not defined there
        "fetch_rate": False,  # not a target
    }
    events = run.by_type()
    escaped = {
        "ZeroDivisionError": "value",  # plain function
        "ArithmeticError": "value",  # coroutine function
        "LookupError": "lookup",  # generator, raised while iterating
        "EOFError": "io",  # async generator
        "KeyError": "lookup",  # method
        "ValueError": "value",  # staticmethod
        "ConnectionError": "connection",  # classmethod
        "OverflowError": "value",  # Class.*
        "UnicodeDecodeError": "value",  # module:*
        "NotImplementedError": "unknown",  # inside the app's own span
    }
    assert set(events) == {*escaped, "TimeoutError"}
    for type_name in escaped:
        event = events[type_name]
        # the app catches every one of them: 3.12+ sees that (handled), a wrapper records
        # at the boundary (escaped)
        assert (event["failure.handled"], event["failure.source"]) == (engine, "auto"), event
        assert len(event["failure.fingerprint"]) == 16
        # an escaped failure's own span is an error; a span it was caught in is left alone
        own_error = event["_span"] == "faultlens.failure" and not engine
        assert event["_status"] == (STATUS_ERROR if own_error else 0)
    assert events["ConnectionError"]["failure.category"] == "connection"
    assert events["LookupError"]["failure.category"] == "lookup"
    # A failure inside a span goes on that span; elsewhere on a span of its own.
    assert events["NotImplementedError"]["_span"] == "handle request"
    assert events["ZeroDivisionError"]["_span"] == "faultlens.failure"


def test_a_swallowed_and_logged_exception_arrives_handled(runs) -> None:
    event = runs["kinds"].by_type()["TimeoutError"]
    assert (event["failure.handled"], event["failure.source"]) == (True, "logging")
    assert event["failure.category"] == "timeout"
    assert event["_status"] != STATUS_ERROR  # a handled failure leaves the status alone
    assert event["code.function.name"] == "main"
    # the program configured no logging: its error is printed as it would be without faultlens
    assert "pricing timed out; using the cached rate\nTraceback" in runs["kinds"].result.stderr


def test_a_bad_spec_gets_one_warning_per_entry_and_the_app_runs(runs) -> None:
    run = runs["kinds"]
    warnings = [line for line in run.result.stderr.splitlines() if line.startswith("faultlens:")]
    assert len(warnings) == len(BAD_TARGETS), run.result.stderr
    for entry in BAD_TARGETS:
        assert sum(repr(entry) in line for line in warnings) == 1, (entry, warnings)
    assert "Traceback" not in run.result.stderr.split("pricing timed out", 1)[0]
    main_script = next(line for line in warnings if "kinds_app:main" in line)
    assert "'kinds_app' is the script being run" in main_script


@pytest.mark.parametrize("switch", ["otel-disabled", "faultlens-disabled"])
def test_both_switches_turn_everything_off(runs, switch: str) -> None:
    run = runs[switch]
    assert not any(_ok(run).values())
    assert run.events() == []
    (span,) = run.spans  # the app's own span still goes out, untouched
    assert (span.name, span.status.code) == ("handle request", 0)
    assert "faultlens:" not in run.result.stderr


def test_the_example_worker_shows_its_silent_and_its_escaped_failure(runs, engine) -> None:
    run = runs["example"]
    assert run.result.returncode == 0, run.result.stderr
    assert run.result.stdout.strip() == "processed 3 of 4 orders"
    # the worker's own logging is configured and printed as without faultlens
    assert "ERROR order_worker: order A-1003 failed; moving on" in run.result.stderr
    events = run.by_type()
    assert set(events) == {"TimeoutError", "KeyError"}
    silent, escaped = events["TimeoutError"], events["KeyError"]
    assert (silent["failure.handled"], silent["failure.source"]) == (True, "logging")
    assert silent["_status"] != STATUS_ERROR
    assert escaped["failure.category"] == "lookup"
    assert escaped["exception.message"] == "'HD-404'"
    if engine:
        # 3.12+: it left jobs.process and the worker loop caught and logged it: handled, once
        assert (escaped["failure.handled"], escaped["failure.source"]) == (True, "logging")
        assert escaped["_status"] != STATUS_ERROR
    else:
        # a wrapper records it where it leaves jobs.process, before anyone catches it
        assert (escaped["failure.handled"], escaped["failure.source"]) == (False, "auto")
        assert escaped["_status"] == STATUS_ERROR
