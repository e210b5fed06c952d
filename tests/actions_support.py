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
    SQLiteActionStore,
    parse_config,
)
from faultlens_collector.actions.store import ActionStore
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


@pytest.fixture(name="any_store", params=["memory", "sqlite"])
def any_store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ActionStore]:
    """Each store implementation in turn."""
    store: ActionStore = (
        MemoryActionStore() if request.param == "memory" else SQLiteActionStore(tmp_path / "a.db")
    )
    try:
        yield store
    finally:
        store.close()


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
]
