"""A seeded program draws the same numbers with faultlens watching (issue 13, item 5).

``tests/instrumented/seeded_app.py`` runs under the real ``opentelemetry-instrument``
on every interpreter of ``interpreters.VERSIONS``; its failures start spans of
faultlens' own (``faultlens.failure``), go through retry backoff with jitter and
the excepthooks, and its draws must equal those of ``random.seed(42)`` alone.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

from faultlens import _randomness as randomness
from faultlens.resilience import exponential
from faultlens_collector import exporter as faultlens_exporter
from interpreters import ZeroCode, instrumented_environment
from opentelemetry.exporter.otlp.proto.grpc import exporter as otlp_grpc_exporter
from otlp_receiver import OtlpReceiver, attributes

PROGRAMS = Path(__file__).resolve().parent / "instrumented"


def _seeded(count: int) -> list[float]:
    state = random.getstate()
    try:
        random.seed(42)
        return [random.random() for _ in range(count)]
    finally:
        random.setstate(state)


def test_seeded_draws_are_unchanged_by_recorded_failures(zero_code: ZeroCode) -> None:
    with OtlpReceiver() as receiver:
        done = subprocess.run(
            [
                str(zero_code.script("opentelemetry-instrument")),
                str(zero_code.python),
                str(PROGRAMS / "seeded_app.py"),
            ],
            env=instrumented_environment(receiver.endpoint, "seeded"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        draws = json.loads(done.stdout.splitlines()[-1])
        assert draws == _seeded(len(draws))
        assert len(draws) == 9
        # It did record, on spans of faultlens' own: the logged lookups, the retries
        # given up and the dying thread.
        assert receiver.wait_for(lambda: len(_sources(receiver)) >= 9), _sources(receiver)
        sources = _sources(receiver)
    assert sources.count("logging") == 4
    assert sources.count("retry") == 4
    assert sources.count("excepthook") == 1


def _sources(receiver: OtlpReceiver) -> list[str]:
    return [
        attributes(event.attributes).get("failure.source", "")
        for _, span in receiver.spans()
        if span.name == "faultlens.failure"
        for event in span.events
    ]


def test_backoff_jitter_and_own_ids_leave_the_global_state_alone() -> None:
    random.seed(7)
    state = random.getstate()
    backoff = exponential(1.0)
    delays = [backoff.delay(retry) for retry in range(1, 6)]
    ids = [randomness.ID_GENERATOR.generate_trace_id() for _ in range(3)]
    assert random.getstate() == state
    assert len(set(delays)) == 5
    assert all(0 < trace_id < 2**128 for trace_id in ids)
    assert len(set(ids)) == 3


def test_the_faultlens_exporter_points_otlp_retry_jitter_at_the_private_generator() -> None:
    faultlens_exporter.FaultlensSpanExporter(endpoint="127.0.0.1:1").shutdown()
    assert getattr(otlp_grpc_exporter, "random") is randomness.generator  # noqa: B009
