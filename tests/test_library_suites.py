"""Real libraries' own test suites give the same outcome, test by test, under ``module:*``.

For each suite of :data:`library_suites.SUITES` (pinned sdists from PyPI: more-itertools,
toolz, pygments) and
each of the suite's own interpreter (3.11: the wrapping path) and 3.12 (the
``sys.monitoring`` engine; 3.13 runs the same engine and is covered by the
repro and engine tests, to keep the suite's wall time down), the library's tests run
plain and under the real ``opentelemetry-instrument`` with every module of the
library named as ``module:*``, side by side; the per-test outcome maps must be
identical. The wall times are printed (benchmarks/bench_instrument.py measures
the ratio).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from interpreters import VENVS, ZeroCode, environment, suite_python
from library_suites import (
    PROBE,
    SUITES,
    Suite,
    fetch,
    pip_install,
    start,
    suite_pytest,
    targets,
)
from otlp_receiver import OtlpReceiver, failure_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session", params=("default", "3.12"))
def zero_code(request: pytest.FixtureRequest) -> ZeroCode:
    """The suite's own interpreter and 3.12, each with faultlens installed."""
    version: str = request.param
    return suite_python() if version == "default" else environment(version)


@pytest.fixture(scope="session")
def sdists() -> Path:
    """Downloads are kept beside the interpreters' environments (git-ignored), across runs."""
    return VENVS / "sdists"


@pytest.mark.parametrize("suite", SUITES, ids=lambda suite: suite.name)
def test_outcomes_are_identical_test_by_test(
    zero_code: ZeroCode, suite: Suite, sdists: Path, tmp_path: Path
) -> None:
    if zero_code.version != "default":
        pip_install(zero_code.python, suite_pytest())
    root = fetch(suite, zero_code.python, sdists)
    assert targets(suite, root).count(":*") >= 3
    with OtlpReceiver() as receiver:
        plain = start(suite, root, zero_code.python, tmp_path / "plain.xml", instrumented=False)
        watched = start(
            suite,
            root,
            zero_code.python,
            tmp_path / "watched.xml",
            instrumented=True,
            endpoint=receiver.endpoint,
        )
        before, after = plain.wait(), watched.wait()
        recorded = receiver.wait_for(lambda: _auto_failures(receiver) > 0)
    print(
        f"\n{suite.name} on {zero_code.version}: {len(before.outcomes)} tests, "
        f"plain {before.seconds:.1f}s, instrumented {after.seconds:.1f}s (side by side)"
    )
    assert before.returncode == 0, before.output[-3000:]
    assert len(before.outcomes) > 100
    assert after.outcomes == before.outcomes, after.output[-3000:]
    assert after.returncode == 0
    # the instrumentor looked at the library (its one warning for the probe target) and,
    # where the tests catch the library's exceptions themselves, recorded them
    assert sum(PROBE in line for line in after.output.splitlines()) == 1, after.output[-3000:]
    assert recorded or not suite.records


def _auto_failures(receiver: OtlpReceiver) -> int:
    events = failure_events(span for _, span in receiver.spans())
    return sum(event["failure.source"] == "auto" for event in events)
