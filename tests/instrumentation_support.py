"""Helpers for the zero-code instrumentation tests: throw-away modules, the instrumentor."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from faultlens.instrumentation import FaultlensInstrumentor

_names = itertools.count()


class Modules:
    """Writes modules under a temporary directory on ``sys.path``; forgets them afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"flmod{next(_names)}"
        self.created: list[str] = []

    def write(self, name: str, source: str) -> str:
        """Write module ``<prefix><name>`` (dots make packages); return its full name."""
        full = self.prefix + name
        parts = full.split(".")
        directory = self.root
        for package in parts[:-1]:
            directory = directory / package
            directory.mkdir(exist_ok=True)
            init = directory / "__init__.py"
            if not init.exists():
                init.write_text("")
        (directory / f"{parts[-1]}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        self.created.append(full)
        return full

    def load(self, name: str, source: str) -> ModuleType:
        """Write and import a module."""
        return importlib.import_module(self.write(name, source))

    def forget(self) -> None:
        for name in list(sys.modules):
            if name.startswith(self.prefix):
                del sys.modules[name]


@pytest.fixture(name="modules")
def modules_fixture(tmp_path: Path) -> Iterator[Modules]:
    sys.path.insert(0, str(tmp_path))
    made = Modules(tmp_path)
    try:
        yield made
    finally:
        sys.path.remove(str(tmp_path))
        made.forget()


@pytest.fixture(name="instrumentor")
def instrumentor_fixture() -> Iterator[FaultlensInstrumentor]:
    """The (singleton) instrumentor, uninstrumented after the test whatever happened."""
    instance = FaultlensInstrumentor()
    try:
        yield instance
    finally:
        if instance.is_instrumented_by_opentelemetry:
            instance.uninstrument()


def instrument(instance: FaultlensInstrumentor, targets: Any, **kwargs: Any) -> None:
    instance.instrument(targets=targets, skip_dep_check=True, **kwargs)


def is_wrapped(obj: Any) -> bool:
    import wrapt

    return isinstance(obj, wrapt.FunctionWrapper)
