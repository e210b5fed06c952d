"""Start-up verification (seed 003): components, the methods others call on them, and
dependencies that must answer; each violation recorded as a failure and shown in health()."""

from __future__ import annotations

import asyncio
import time
import weakref

import pytest
from faultlens.resilience import (
    StartupVerificationError,
    health,
    verify_startup,
    verify_startup_async,
)
from faultlens.resilience import (
    _report as report,
)
from faultlens.resilience import _startup as startup_module


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "_members", weakref.WeakSet())
    monkeypatch.setattr(startup_module, "_latest", {})


class VixManager:
    regime = "calm"

    def get_current_vix(self) -> float:
        return 14.2


class PositionSizer:
    max_allocation = 0.3
    get_available_buying_power = 100  # not a method


class Algorithm:
    def __init__(self) -> None:
        self.vix_manager = VixManager()
        self.position_sizer = PositionSizer()
        self.state_manager = None  # failed to initialize


REQUIRES = {
    "vix_manager": ["get_current_vix()", "get_market_regime()", "regime"],
    "position_sizer": ["max_allocation", "get_available_buying_power()"],
    "state_manager": ["register_strategy()"],
    "strategy_coordinator": ["execute_strategies()"],
}


def test_every_violation_is_found_recorded_with_its_severity_and_shown_in_health(
    telemetry,
) -> None:
    result = verify_startup(Algorithm(), REQUIRES, name="trading")
    found = {(v.kind, v.component, v.name): (v.severity, v.category) for v in result.violations}
    assert found == {
        ("missing_attribute", "vix_manager", "get_market_regime()"): ("high", "integration"),
        ("missing_attribute", "position_sizer", "get_available_buying_power()"): (
            "high",
            "integration",
        ),
        ("missing_component", "state_manager", ""): ("critical", "configuration"),
        ("missing_component", "strategy_coordinator", ""): ("critical", "configuration"),
    }
    assert result.checked == 9
    events = telemetry.failure_events()
    assert sorted((e["failure.category"], e["failure.severity"]) for e in events) == [
        ("configuration", "critical"),
        ("configuration", "critical"),
        ("integration", "high"),
        ("integration", "high"),
    ]
    assert all(e["failure.handled"] is True for e in events)
    types = {e["exception.type"].rsplit(".", 1)[-1] for e in events}
    assert types == {"MissingComponentError", "MissingAttributeError"}
    assert {e["failure.fingerprint"] for e in events} == {v.fingerprint for v in result.violations}
    state = health()
    assert state.status == "unhealthy"
    (component,) = state.components
    assert (component.kind, component.name) == ("startup", "trading")
    assert len(component.detail["violations"]) == 4


def test_the_same_violation_has_the_same_fingerprint_on_every_start(telemetry) -> None:
    first = verify_startup(Algorithm(), REQUIRES)
    second = verify_startup(Algorithm(), REQUIRES)
    assert [v.fingerprint for v in first.violations] == [v.fingerprint for v in second.violations]
    assert len({v.fingerprint for v in first.violations}) == 4
    # The later report replaces the earlier one in health().
    assert len(health().components) == 1


def test_all_requirements_met_is_healthy_and_records_nothing(telemetry) -> None:
    result = verify_startup(
        {"vix_manager": VixManager()},
        {"vix_manager": ["get_current_vix()", "regime"]},
        {"db": lambda: True, "cache": lambda: None},
        strict=True,
    )
    assert result.ok
    assert health().status == "healthy"
    assert telemetry.failure_events() == []


def test_dependencies_that_fail_refuse_or_hang_are_violations_within_the_timeout(
    telemetry,
) -> None:
    def refused() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    async def answers() -> bool:
        await asyncio.sleep(0)
        return True

    async def hangs() -> None:
        await asyncio.sleep(30)

    started = time.monotonic()
    result = verify_startup(
        dependencies={
            "postgres": refused,
            "quotes": lambda: time.sleep(30),
            "rates": hangs,
            "cache": answers,
            "feature_flags": lambda: False,
        },
        critical=["postgres"],
        timeout=0.5,
    )
    elapsed = time.monotonic() - started
    assert elapsed < 3.0  # checked at the same time, not one after another
    by_name = {v.component: v for v in result.violations}
    assert set(by_name) == {"postgres", "quotes", "rates", "feature_flags"}
    assert by_name["postgres"].severity == "critical"
    assert by_name["quotes"].severity == "high"
    assert "did not answer within 0.5 s" in by_name["quotes"].message
    assert "ConnectionRefusedError" in by_name["postgres"].message
    events = {e["faultlens.requirement.name"]: e for e in telemetry.failure_events()}
    assert events["quotes"]["exception.type"].endswith("DependencyTimeoutError")
    assert events["postgres"]["exception.type"].endswith("DependencyUnavailableError")
    assert "ConnectionRefusedError" in events["postgres"]["exception.stacktrace"]
    assert {e["failure.category"] for e in events.values()} == {"dependency"}
    assert health().status == "unhealthy"


def test_strict_raises_one_error_listing_every_violation_after_recording_them(telemetry) -> None:
    with pytest.raises(StartupVerificationError) as raised:
        verify_startup(
            Algorithm(),
            REQUIRES,
            {"db": lambda: 1 / 0},
            strict=True,
            name="trading",
        )
    error = raised.value
    assert len(error.violations) == 5
    text = str(error)
    assert text.startswith("start-up verification 'trading' failed with 5 violations:")
    for fragment in (
        "vix_manager (VixManager) has no method 'get_market_regime'",
        "position_sizer.get_available_buying_power (PositionSizer) is not callable: int",
        "component 'state_manager' is missing",
        "component 'strategy_coordinator' is missing",
        "dependency 'db' did not answer: ZeroDivisionError: division by zero",
    ):
        assert fragment in text
    assert len(telemetry.failure_events()) == 5
    assert health().status == "unhealthy"


def test_the_async_form_runs_coroutine_dependencies_on_the_running_loop(telemetry) -> None:
    loop_seen: list[asyncio.AbstractEventLoop] = []

    async def on_this_loop() -> bool:
        loop_seen.append(asyncio.get_running_loop())
        return True

    async def main() -> tuple[object, asyncio.AbstractEventLoop]:
        result = await verify_startup_async(
            dependencies={
                "mine": on_this_loop,
                "slow": lambda: time.sleep(30),
                "stuck": lambda: asyncio.sleep(30),
            },
            timeout=0.3,
            name="service",
        )
        return result, asyncio.get_running_loop()

    result, loop = asyncio.run(main())
    assert loop_seen == [loop]
    assert {v.component for v in result.violations} == {"slow", "stuck"}  # type: ignore[attr-defined]
    assert health().status == "degraded"  # no critical violation
