"""The ``sys.monitoring`` capture engine (Python 3.12+) in real interpreters.

``tests/instrumented/engine_scenarios.py`` and ``engine_tools.py`` run under
pyenv's 3.12 and 3.13 (``interpreters.zero_code``; the suite's own Python is
used too when it is 3.12+) and print what each scenario produced: the failure
events as ``[type, handled, source, span, status]``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from interpreters import ZeroCode, zero_code

__all__ = ["zero_code"]

PROGRAMS = Path(__file__).resolve().parent / "instrumented"
HANDLED = ["ValueError", True, "auto", "faultlens.failure", "UNSET"]


def _run(zero_code: ZeroCode, script: str, *args: str) -> Any:
    version = subprocess.run(
        [str(zero_code.python), "-c", "import sys; print(sys.version_info >= (3, 12))"],
        capture_output=True,
        text=True,
        check=True,
    )
    if version.stdout.strip() != "True":
        pytest.skip(f"{zero_code.version}: the sys.monitoring engine needs Python 3.12+")
    return subprocess.run(
        [str(zero_code.python), script, *args],
        cwd=PROGRAMS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="session")
def scenarios(zero_code: ZeroCode) -> dict[str, Any]:
    done = _run(zero_code, "engine_scenarios.py")
    assert done.returncode == 0, done.stderr
    results: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return results


def _events(scenarios: dict[str, Any], name: str) -> list[list[Any]]:
    events: list[list[Any]] = scenarios[name]["events"]
    return events


@pytest.mark.parametrize(
    "name",
    [
        "caught",  # contextlib.suppress in application code
        "through_callback",  # named -> app callback -> named -> app catches
        "finally_then_caught",  # a finally clause on the way re-raises
        "except_reraise_then_caught",  # `except: raise` on the way
        "not_matching_handler",  # an `except TypeError` on the way does not match
        "translated_and_caught",  # `raise ApiError from exc` carries the fate on
        "future",  # held by a ThreadPoolExecutor future, raised again by result()
    ],
)
def test_an_exception_the_application_catches_is_one_handled_failure(scenarios, name) -> None:
    assert _events(scenarios, name) == [HANDLED]


def test_generators_closures_coroutines_and_tasks(scenarios) -> None:
    assert _events(scenarios, "generator") == [["LookupError", *HANDLED[1:]]]
    assert scenarios["watched_closure"] is True  # code nested in a named function counts
    assert _events(scenarios, "closure") == [["KeyError", *HANDLED[1:]]]
    assert _events(scenarios, "await") == [["ConnectionError", *HANDLED[1:]]]
    assert _events(scenarios, "task") == [["ConnectionError", *HANDLED[1:]]]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("inside", "recovered inside"),  # raised and caught inside named code
        ("back_inside", "caught back in named code"),  # left it via a callback, caught in it
        ("thrown_into_contextmanager", "not from named code"),  # a with body's exception
        ("hasattr", False),  # protocol: C code swallowed the AttributeError
        ("cancelled", "cancelled"),  # asyncio's cancellation thrown into a named coroutine
    ],
)
def test_what_is_not_a_failure(scenarios, name, value) -> None:
    assert scenarios[name] == {"events": [], "value": value}


def test_each_attempt_of_a_retry_loop_is_a_handled_failure(scenarios) -> None:
    assert scenarios["loop_retry"] == {"events": [HANDLED] * 3, "value": 3}


def test_the_event_goes_on_the_span_where_it_was_caught_and_leaves_its_status(scenarios) -> None:
    assert _events(scenarios, "span_caught") == [["ValueError", True, "auto", "request", "UNSET"]]


def test_a_thread_dying_of_it_is_an_escaped_failure(scenarios) -> None:
    assert _events(scenarios, "thread") == [
        ["ValueError", False, "auto", "faultlens.failure", "ERROR"]
    ]


def test_the_global_events_are_few_and_never_switched_per_failure(scenarios) -> None:
    assert scenarios["followed_after"] == 0
    # no RAISE/RERAISE (they fire per frame and per StopIteration); the same three
    # events through a burst of failures and after it, so nothing is re-instrumented
    expected = ["EXCEPTION_HANDLED", "PY_THROW", "PY_UNWIND"]
    assert scenarios["global_events_after_a_burst"] == expected
    assert scenarios["global_events_idle"] == expected


def test_the_decorator_returns_the_function_and_watches_it(scenarios) -> None:
    assert scenarios["decorator_is_function"] is True
    assert scenarios["decorator_identity"] is True
    assert _events(scenarios, "decorator") == [
        ["ValueError", True, "decorator", "faultlens.failure", "UNSET"]
    ]
    assert _events(scenarios, "with_block") == [
        ["OSError", True, "manual", "faultlens.failure", "UNSET"]
    ]


def test_the_swallowed_exception_detector_shares_the_engines_tool_id(scenarios) -> None:
    # faultlens run's detector (issue 17) observes the engine's handlers: the exception
    # caught inside the project's code and dropped is swallowed; the one escaping it is
    # followed by the engine; one sys.monitoring tool id serves both
    assert scenarios["detector"] == {
        "swallowed": ["ValueError@engine_lib:fail_inside"],
        "outcomes": ["ValueError:caught"],
        "same_tool": True,
        "tools_held": ["faultlens"],
    }


def test_tool_ids_held_by_other_tools_fall_back_to_wrapping(zero_code: ZeroCode) -> None:
    done = _run(zero_code, "engine_tools.py", "held")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["wrapped"] is True
    (warning,) = out["warnings"]
    assert "held by another tool" in warning
    assert out["tools"] == [None, None, None, "other3", "other4", "other5"]


def test_uninstrument_gives_the_tool_id_back(zero_code: ZeroCode) -> None:
    done = _run(zero_code, "engine_tools.py", "release")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert (out["tool"], out["held"]) == (3, "faultlens")  # 4 was taken: the next free one
    assert out["after"] == [None, None, None, None, "other4", None]
    assert out["events_after"] == 0
    assert out["current_after"] is True


def test_install_alone_holds_the_tool_id_with_no_global_event(zero_code: ZeroCode) -> None:
    # the uncaught exceptions of threads are seen through a local CALL event on
    # Thread._bootstrap_inner: a process without targets pays no global
    # EXCEPTION_HANDLED/PY_UNWIND callback; targets switch them on, and off again
    done = _run(zero_code, "engine_tools.py", "threads")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    handled_unwind_throw = 2048 | 4096 | 8192  # EXCEPTION_HANDLED, PY_UNWIND, PY_THROW
    assert out["installed"] == ["faultlens", 0, True]
    assert out["instrumented"] == ["faultlens", handled_unwind_throw, True]
    assert out["uninstrumented"] == ["faultlens", 0, True]
    assert out["uninstalled"] == [None, 0, False]


def test_an_uncaught_exception_is_an_escaped_critical_failure(zero_code: ZeroCode) -> None:
    done = _run(zero_code, "engine_tools.py", "uncaught")
    assert done.returncode == 1
    assert "ValueError: uncaught" in done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [[False, "critical", "auto"]]
