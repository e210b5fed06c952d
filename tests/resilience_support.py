"""Test doubles for the resilience tests: a fake clock and an in-memory metric pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader


class FakeClock:
    """A monotonic clock that only moves when told (``sleep`` moves it too)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@dataclass
class Metrics:
    """A meter provider whose metrics can be read back as plain values."""

    provider: MeterProvider
    reader: InMemoryMetricReader

    def points(self, name: str) -> list[tuple[dict[str, Any], float]]:
        """Every data point of instrument ``name``: (attributes, value)."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], float]] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(
                            (dict(point.attributes or {}), point.value)
                            for point in metric.data.data_points
                        )
        return found

    def value(self, name: str, **attributes: Any) -> float:
        """The value of the one point of ``name`` whose attributes include ``attributes``."""
        matching = [
            value
            for attrs, value in self.points(name)
            if all(attrs.get(key) == wanted for key, wanted in attributes.items())
        ]
        assert len(matching) == 1, (name, attributes, self.points(name))
        return matching[0]


def metric_pipeline() -> Iterator[Metrics]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        yield Metrics(provider, reader)
    finally:
        provider.shutdown()


# Fixtures for the resilience test modules, which import them by these names.
@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="meter")
def meter_fixture() -> Iterator[Metrics]:
    yield from metric_pipeline()
