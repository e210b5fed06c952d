"""uninstrument() puts back exactly what instrument() changed, and nothing else."""

from __future__ import annotations

import asyncio
import importlib
import logging
import logging.config
import sys
import threading

import faultlens
import wrapt
from faultlens._asyncio_hook import asyncio_hook_installed
from faultlens._excepthooks import excepthooks_installed
from faultlens._logcapture import logging_capture_installed
from instrumentation_support import (  # noqa: F401 (fixtures)
    instrument,
    instrumentor_fixture,
    is_wrapped,
    modules_fixture,
)

SOURCE = """
def plain():
    raise ValueError("plain")

async def coro():
    return 1

class Base:
    def inherited(self):
        return "base"

class Service(Base):
    def method(self):
        return 1

    @staticmethod
    def static():
        return 2

    @classmethod
    def klass(cls):
        return 3
"""


def _pending_hooks() -> dict[str, list[object]]:
    return dict(sys.modules["wrapt.importer"]._post_import_hooks)


def test_uninstrument_restores_every_original_exactly(telemetry, modules, instrumentor) -> None:
    mod = modules.load("restore", SOURCE)
    consumer = modules.load("user", f"from {mod.__name__} import plain\n")
    later = modules.write("later.jobs", "def run():\n    return 1\n")
    n = mod.__name__
    module_before = dict(vars(mod))
    class_before = dict(vars(mod.Service))
    base_before = dict(vars(mod.Base))
    hooks = (sys.excepthook, threading.excepthook, asyncio.BaseEventLoop.call_exception_handler)
    config_functions = (logging.basicConfig, logging.config.dictConfig)
    root_handlers = list(logging.getLogger().handlers)

    instrument(instrumentor, f"{n}:*,{n}:Service.*,{n}:Service.inherited,{later}:run")
    session = instrumentor.session
    assert session is not None
    assert is_wrapped(mod.plain)
    assert is_wrapped(consumer.plain)
    assert all(is_wrapped(vars(mod.Service)[k]) for k in ("method", "static", "klass"))
    assert is_wrapped(vars(mod.Service)["inherited"])
    parent = later.rsplit(".", 1)[0]  # not imported either: a hook checks the module exists
    assert [(h.module, h.registered()) for h in session.import_hooks] == [
        (later, True),
        (parent, True),
    ]
    assert {later, parent} <= set(_pending_hooks())
    assert excepthooks_installed()
    assert sys.excepthook is hooks[0]  # uncaught exceptions are captured without replacing it
    if sys.version_info >= (3, 12):
        assert threading.excepthook is hooks[1]  # threads too (sys.monitoring)
    assert asyncio_hook_installed()
    assert logging_capture_installed()

    instrumentor.uninstrument()

    assert vars(mod) == module_before
    assert all(vars(mod)[k] is v for k, v in module_before.items())
    assert all(vars(mod.Service)[k] is v for k, v in class_before.items())
    assert set(vars(mod.Service)) == set(class_before)  # the inherited one is gone again
    assert all(vars(mod.Base)[k] is v for k, v in base_before.items())
    assert consumer.plain is module_before["plain"]
    assert (
        sys.excepthook,
        threading.excepthook,
        asyncio.BaseEventLoop.call_exception_handler,
    ) == hooks
    assert not excepthooks_installed()
    assert (logging.basicConfig, logging.config.dictConfig) == config_functions
    assert logging.getLogger().handlers == root_handlers
    assert not any(h.registered() for h in session.import_hooks)
    assert not {later, parent} & set(_pending_hooks())
    assert not is_wrapped(importlib.import_module(later).run)  # the hook is really gone
    assert instrumentor.session is None


def test_hooks_installed_before_instrumenting_stay(telemetry, instrumentor) -> None:
    faultlens.install()
    instrument(instrumentor, None)
    instrumentor.uninstrument()
    assert excepthooks_installed()
    assert asyncio_hook_installed()
    assert logging_capture_installed()


def test_a_wrapper_replaced_meanwhile_is_left_alone(telemetry, modules, instrumentor) -> None:
    mod = modules.load("replaced", SOURCE)
    instrument(instrumentor, f"{mod.__name__}:plain,{mod.__name__}:coro")

    def newer() -> None:
        return None

    mod.plain = newer
    instrumentor.uninstrument()
    assert mod.plain is newer
    assert not is_wrapped(mod.coro)


def test_instrument_again_after_uninstrument(telemetry, modules, instrumentor) -> None:
    mod = modules.load("again", SOURCE)
    original = mod.plain
    for _ in range(2):
        instrument(instrumentor, f"{mod.__name__}:plain")
        assert isinstance(mod.plain, wrapt.FunctionWrapper)
        assert mod.plain.__wrapped__ is original
        instrumentor.uninstrument()
        assert mod.plain is original


def test_uninstrument_when_not_instrumented_is_harmless(instrumentor) -> None:
    instrumentor.uninstrument()
    assert instrumentor.session is None
