"""Helpers for the action engine tests: failures, hook commands, configs, waiting."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlens_collector.actions import (
    ActionEngine,
    ActionsConfig,
    FailureFacts,
    MemoryActionStore,
    parse_config,
)
from faultlens_collector.actions.store import ActionStore
from faultlens_collector.store.sqlite.actions import SQLiteActionStore
from faultlens_collector.store.sqlite.database import SQLiteDatabase
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from resilience_support import FakeClock

FP = "0123456789abcdef"
FP2 = "fedcba9876543210"


def facts(**overrides: Any) -> FailureFacts:
    """A failure group with sensible defaults."""
    values: dict[str, Any] = {
        "fingerprint": FP,
        "exception_type": "ValueError",
        "message": "invalid amount -3",
        "category": "value",
        "severity": "medium",
        "service": "payments",
        "span_name": "charge",
        "count": 1,
    }
    values.update(overrides)
    return FailureFacts(**values)


def python_hook(code: str) -> list[str]:
    """A ``command`` running ``code`` with this interpreter (no shell involved)."""
    return [sys.executable, "-c", textwrap.dedent(code)]


def config(data: dict[str, Any]) -> ActionsConfig:
    return parse_config(data, source="test.toml")


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)


class Clock(FakeClock):
    """A fake wall clock (epoch-like values) for the engine."""

    def __init__(self) -> None:
        super().__init__(1_700_000_000.0)


def sqlite_action_store(path: Path, **options: Any) -> SQLiteActionStore:
    """The action store of a SQLite database at ``path`` (opened here)."""
    return SQLiteDatabase(path).action_store(**options)


@pytest.fixture(name="any_store", params=["memory", "sqlite", "postgres"])
def any_store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ActionStore]:
    """Each store implementation in turn (PostgreSQL: a fresh database of the test
    server, skipped when none can start)."""
    store: ActionStore
    closing: Callable[[], None]
    if request.param == "memory":
        store = MemoryActionStore()
        closing = store.close
    elif request.param == "sqlite":
        store = sqlite_action_store(tmp_path / "a.db")
        closing = store.close
    else:
        from faultlens_collector.store.postgres.database import PostgresDatabase

        from tests.postgres_support import fresh_database

        database = PostgresDatabase(fresh_database(request.getfixturevalue("postgres_cluster")))
        store = database.action_store()
        closing = database.close
    try:
        yield store
    finally:
        closing()


def engine_with(
    data: dict[str, Any], store: ActionStore | None = None, **options: Any
) -> ActionEngine:
    """An engine (not started) for a config given as a dict."""
    return ActionEngine(config(data), store, **options)


__all__ = [
    "FP",
    "FP2",
    "Clock",
    "any_store_fixture",
    "config",
    "engine_with",
    "facts",
    "python_hook",
    "sqlite_action_store",
]


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def breaker_request(
    state: str | None,
    opens: int | None = None,
    *,
    start: int = 1,
    delta: bool = False,
    service: str = "checkout",
    breaker: str = "db",
) -> ExportMetricsServiceRequest:
    """What the SDK reports for one breaker: a status point per state, the open transitions."""
    temporality = (
        metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
        if delta
        else metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    metrics = []
    if state is not None:
        points = [
            metrics_pb2.NumberDataPoint(
                attributes=[_kv("breaker.name", breaker), _kv("breaker.state", name)],
                as_int=int(name == state),
                time_unix_nano=10,
            )
            for name in ("closed", "open", "half_open", "forced_open")
        ]
        metrics.append(
            metrics_pb2.Metric(
                name="faultlens.breaker.status",
                sum=metrics_pb2.Sum(data_points=points, aggregation_temporality=temporality),
            )
        )
    if opens is not None:
        point = metrics_pb2.NumberDataPoint(
            attributes=[_kv("breaker.name", breaker), _kv("breaker.state", "open")],
            as_int=opens,
            start_time_unix_nano=start,
        )
        metrics.append(
            metrics_pb2.Metric(
                name="faultlens.breaker.transitions",
                sum=metrics_pb2.Sum(
                    data_points=[point], aggregation_temporality=temporality, is_monotonic=True
                ),
            )
        )
    resource = metrics_pb2.ResourceMetrics(
        scope_metrics=[metrics_pb2.ScopeMetrics(metrics=metrics)],
    )
    resource.resource.attributes.extend(
        [_kv("service.name", service), _kv("service.instance.id", "i-1")]
    )
    return ExportMetricsServiceRequest(resource_metrics=[resource])
