"""Issue 13's repros under the real ``opentelemetry-instrument``, on every interpreter.

``tests/instrumented/repro_app.py`` uses ``repro_lib`` (named in
``FAULTLENS_INSTRUMENT``) the way the libraries of the issue did; it runs once
per interpreter of :data:`interpreters.VERSIONS` — the suite's own (3.11: the
wrapping path) and pyenv's 3.12 and 3.13 (the ``sys.monitoring`` engine) —
against one OTLP receiver, and the tests check what it observed and what
arrived.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from interpreters import ZeroCode, instrumented_environment, zero_code
from otlp_receiver import OtlpReceiver, failure_events

__all__ = ["zero_code"]

PROGRAMS = Path(__file__).resolve().parent / "instrumented"
TARGETS = "repro_lib:*,repro_lib:Box.*,repro_lib:Range.__contains__,repro_lib:Range.index"
STATUS_UNSET, STATUS_ERROR = 0, 2


@dataclass
class Repro:
    observed: dict[str, Any]
    events: list[dict[str, Any]]
    stderr: str

    @property
    def monitoring(self) -> bool:
        return tuple(self.observed["python"]) >= (3, 12)

    def event(self, type_name: str, span: str | None = None) -> dict[str, Any]:
        found = [
            e
            for e in self.events
            if e["exception.type"] == type_name and (span is None or e["_span"] == span)
        ]
        assert len(found) == 1, (type_name, span, self.events)
        return found[0]


@pytest.fixture(scope="session")
def repro(zero_code: ZeroCode) -> Repro:
    with OtlpReceiver() as receiver:
        done = subprocess.run(
            [
                str(zero_code.script("opentelemetry-instrument")),
                str(zero_code.python),
                str(PROGRAMS / "repro_app.py"),
            ],
            cwd=PROGRAMS,
            env=instrumented_environment(
                receiver.endpoint, f"repro-{zero_code.version}", FAULTLENS_INSTRUMENT=TARGETS
            ),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        observed = json.loads(done.stdout.splitlines()[-1])
        receiver.wait_for(lambda: len(_events(receiver)) >= 4)
        return Repro(observed, _events(receiver), done.stderr)


def _events(receiver: OtlpReceiver) -> list[dict[str, Any]]:
    return failure_events(span for _, span in receiver.spans())


def test_the_targets_are_watched_on_312_and_wrapped_before(repro: Repro) -> None:
    expected = "watched" if repro.monitoring else "wrapped"
    assert set(repro.observed["watching"].values()) == {expected}


def test_item1_wrapper_kind_follows_the_object_called(repro: Repro) -> None:
    assert repro.observed["kind"] == {
        "contextmanager": "<x>",
        "asynccontextmanager": "<a>",
        "listify": [0, 1, 4, 9],
    }


def test_item2_identity_of_functions_stored_in_classes(repro: Repro) -> None:
    assert repro.observed["identity"] == {
        "setattr_is_function": True,
        "is_frozen": True,
        "method_read_twice": True,
        "bound_call": 2,
    }


def test_item3_caller_frames(repro: Repro) -> None:
    frames = repro.observed["frames"]
    assert frames["made_module"] == "__main__"  # named after the real caller's module
    assert frames["made_pickles"] is True
    assert frames["warning_file"] == "repro_app.py"  # stacklevel=2 names the caller
    assert frames["faultlens_in_traceback"] is False
    assert frames["traceback_frames"] == 2  # main -> explode, nothing in between
    # the one thing a wrapper cannot hide: its frame object (documented)
    assert frames["caller_name"] == ("main" if repro.monitoring else "sync_wrapper")


def test_item4_pickle_copy_and_process_pools(repro: Repro) -> None:
    assert repro.observed["pickle"] == {
        "function": True,
        "method": True,
        "bound": 3,
        "copy": True,
        "deepcopy_method": True,
        "process_pool": [1, 4, 9],
        # The original a registry took before wrapping pickles by reference to a module
        # name that now holds the wrapper: the C pickler's identity check cannot be
        # satisfied by a wrapper (documented for 3.10/3.11; jinja2's Environment).
        "registered": True if repro.monitoring else "PicklingError",
    }


def test_item6_raised_and_caught_inside_named_code_is_no_failure(repro: Repro) -> None:
    assert repro.observed["inside"] == 50
    assert repro.observed["lookup"] == -1
    types = {event["exception.type"] for event in repro.events}
    assert types == {"RuntimeError", "ConnectionError", "ZeroDivisionError"}, repro.events
    assert len(repro.events) == 4  # one occurrence each; ValueError/KeyError never


def test_item8_a_recovered_request_keeps_its_span_status(repro: Repro) -> None:
    recovered = repro.event("ConnectionError", "recovered request")
    assert recovered["_status"] == STATUS_UNSET
    assert recovered["failure.source"] == "auto"
    # 3.12+: the engine saw the caller catch it; the wrapping path records at the boundary
    assert recovered["failure.handled"] is repro.monitoring
    caught = repro.event("RuntimeError")
    assert caught["failure.handled"] is repro.monitoring
    assert caught["_status"] == (STATUS_UNSET if repro.monitoring else STATUS_ERROR)


def test_item8_escaped_to_a_handler_of_last_resort(repro: Repro) -> None:
    assert repro.observed["wsgi_status"] == "HTTP/1.0 500 Internal Server Error"
    wsgi = repro.event("ConnectionError", "wsgi request")
    assert wsgi["failure.handled"] is False
    # the engine knows it ended the request there; a wrapper leaves the span to its owner
    assert wsgi["_status"] == (STATUS_ERROR if repro.monitoring else STATUS_UNSET)
    thread = repro.event("ZeroDivisionError")
    assert (thread["failure.handled"], thread["_span"], thread["_status"]) == (
        False,
        "faultlens.failure",
        STATUS_ERROR,
    )
