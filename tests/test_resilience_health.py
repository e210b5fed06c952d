"""Health report, the global meter provider, docs coverage and import cost."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest
from faultlens.resilience import CircuitBreaker, FailureTracker, Fallback, health
from faultlens.resilience import _report as report
from faultlens.resilience._metrics import INSTRUMENTS
from faultlens.resilience._settings import ENVIRONMENT
from faultlens.resilience._testing import clocks
from resilience_support import FakeClock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "_members", weakref.WeakSet())


def test_nothing_registered_is_healthy() -> None:
    assert health().as_dict() == {"status": "healthy", "components": []}


def test_overall_status_is_the_worst_component() -> None:
    clock = FakeClock()
    with clocks(monotonic=clock):
        breaker = CircuitBreaker("psp", failure_threshold=1, recovery_timeout=5)
    tracker = FailureTracker("signals", threshold=2)
    quotes = Fallback(lambda: "cached", name="quotes")
    assert health().status == "healthy"

    tracker.record_failure(ValueError("x"), {"symbol": "AAPL"})
    result = health()
    assert result.status == "degraded"
    (tracked,) = [c for c in result.components if c.kind == "tracker"]
    assert tracked.detail["failing_keys"][0]["key"] == {"symbol": "AAPL"}

    with pytest.raises(ConnectionError):
        breaker.call(lambda: (_ for _ in ()).throw(ConnectionError("down")))
    assert health().status == "unhealthy"
    clock.advance(5)
    assert health().status == "degraded"  # half-open
    breaker.call(lambda: None)
    tracker.record_success({"symbol": "AAPL"})
    assert health().status == "healthy"

    quotes.call(lambda: (_ for _ in ()).throw(TimeoutError()))
    assert health().status == "degraded"
    tracker.halt(reason="maintenance")
    result = health()
    assert result.status == "unhealthy"
    assert [(c.kind, c.name, c.status) for c in result.components] == [
        ("breaker", "psp", "healthy"),
        ("fallback", "quotes", "degraded"),
        ("tracker", "signals", "unhealthy"),
    ]
    json.dumps(result.as_dict())  # serializable for a health endpoint


def test_registry_is_weak_and_explicit() -> None:
    breaker = CircuitBreaker("gone")
    assert len(health().components) == 1
    del breaker
    import gc

    gc.collect()
    assert health().components == ()
    hidden = CircuitBreaker("hidden", register=False)
    assert health().components == ()
    report.register(hidden)
    assert [c.name for c in health().components] == ["hidden"]
    report.unregister(hidden)
    assert health().components == ()


GLOBAL_PROVIDER_SCRIPT = textwrap.dedent(
    """
    import json
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from faultlens.resilience import CircuitBreaker, CircuitOpenError

    breaker = CircuitBreaker("early", failure_threshold=1)  # built before the SDK is set up
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    try:
        breaker.call(lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    try:
        breaker.call(lambda: None)
    except CircuitOpenError:
        pass
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    attrs = dict(p.attributes)
                    if attrs.get("breaker.state") == "open":
                        points[m.name] = p.value
    print(json.dumps(points))
    """
)


@pytest.mark.slow
def test_objects_built_before_the_global_provider_report_through_it(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(GLOBAL_PROVIDER_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == {
        "faultlens.breaker.status": 1,
        "faultlens.breaker.transitions": 1,
        "faultlens.breaker.rejected": 1,
    }


def test_import_faultlens_does_not_load_the_resilience_layer() -> None:
    code = "import sys, faultlens; print('faultlens.resilience' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


def test_docs_list_every_instrument_and_variable() -> None:
    docs = (ROOT / "docs" / "resilience.md").read_text()
    for spec in INSTRUMENTS:
        assert f"`{spec.name}`" in docs, spec.name
        assert spec.unit in docs
    for variable in ENVIRONMENT:
        assert f"`{variable}`" in docs, variable


@pytest.mark.slow
def test_the_example_halts_and_stays_halted_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "halts.json"

    def run() -> list[str]:
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "resilience_signals.py"), str(state)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.splitlines()

    first = run()
    assert first[0].startswith("tick 0: no signal (insufficient data points")
    assert first[3].startswith("tick 3: refused: halted by 'signals'")
    assert first[-1] == '"unhealthy"'
    assert run()[0].startswith("tick 0: refused: halted by 'signals'")
