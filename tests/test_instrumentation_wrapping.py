"""FaultlensInstrumentor in-process: every target kind, imports in any order, aliases, warnings."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys

import faultlens
import pytest
from faultlens._excepthooks import excepthooks_installed
from instrumentation_support import (  # noqa: F401 (fixtures)
    instrument,
    instrumentor_fixture,
    is_wrapped,
    modules_fixture,
)

KINDS = """
    import asyncio

    def plain(x):
        return 10 // x

    async def coro(x):
        await asyncio.sleep(0)
        return 10 // x

    def gen(n):
        yield 1
        raise LookupError(f"row {n} vanished")

    async def agen(n):
        yield 1
        raise TimeoutError(f"page {n} timed out")

    class Base:
        def inherited(self):
            raise PermissionError("inherited")

    class Service(Base):
        def __init__(self, fail=False):
            if fail:
                raise ValueError("bad config")

        def method(self, key):
            return {}[key]

        @staticmethod
        def static(x):
            return int(x)

        @classmethod
        def klass(cls, x):
            raise ConnectionError(f"{cls.__name__} {x}")

        def __getattr__(self, name):
            raise AttributeError(name)

        def __repr__(self):
            return "Service()"

        class Inner:
            def deep(self):
                raise OSError("deep")
"""


def failures(telemetry) -> list[tuple[str, bool, str]]:
    return [
        (e["exception.type"], e["failure.handled"], e["failure.source"])
        for e in telemetry.failure_events()
    ]


def test_every_kind_is_wrapped_and_records_what_escapes(telemetry, modules, instrumentor) -> None:
    mod = modules.load("kinds", KINDS)
    name = mod.__name__
    instrument(
        instrumentor,
        f"{name}:plain,{name}:coro,{name}:gen,{name}:agen,{name}:Service.method,"
        f"{name}:Service.static,{name}:Service.klass,{name}:Service.Inner.deep",
    )
    assert mod.plain(5) == 2  # success paths are untouched
    assert mod.Service.static("7") == 7
    with pytest.raises(ZeroDivisionError):
        mod.plain(0)
    with pytest.raises(ZeroDivisionError):
        asyncio.run(mod.coro(0))
    rows = mod.gen(3)
    assert next(rows) == 1
    with pytest.raises(LookupError):
        next(rows)

    async def drain() -> list[int]:
        return [item async for item in mod.agen(2)]

    with pytest.raises(TimeoutError):
        asyncio.run(drain())
    with pytest.raises(KeyError):
        mod.Service().method("k")
    with pytest.raises(ValueError):
        mod.Service().static("x")  # through an instance too
    with pytest.raises(ConnectionError, match="Service 1"):
        mod.Service.klass(1)
    with pytest.raises(OSError, match="deep"):
        mod.Service.Inner().deep()
    assert failures(telemetry) == [
        ("ZeroDivisionError", False, "auto"),
        ("ZeroDivisionError", False, "auto"),
        ("LookupError", False, "auto"),
        ("TimeoutError", False, "auto"),
        ("KeyError", False, "auto"),
        ("ValueError", False, "auto"),
        ("ConnectionError", False, "auto"),
        ("OSError", False, "auto"),
    ]
    assert all(e["_span"] == "faultlens.failure" for e in telemetry.failure_events())


def test_class_wildcard_wraps_the_class_body_only(telemetry, modules, instrumentor) -> None:
    mod = modules.load("kinds", KINDS)
    instrument(instrumentor, f"{mod.__name__}:Service.*")
    own = vars(mod.Service)
    for name in ("__init__", "method", "static", "klass"):
        assert is_wrapped(own[name]), name
    # protocol dunders raise as control flow; inherited methods belong to the base class
    assert not is_wrapped(own["__getattr__"])
    assert not is_wrapped(own["__repr__"])
    assert "inherited" not in own
    with pytest.raises(ValueError):
        mod.Service(fail=True)
    assert getattr(mod.Service(), "missing", None) is None
    assert failures(telemetry) == [("ValueError", False, "auto")]


def test_a_named_inherited_method_is_wrapped_on_that_class_only(
    telemetry, modules, instrumentor
) -> None:
    mod = modules.load("kinds", KINDS)
    original = vars(mod.Base)["inherited"]
    instrument(instrumentor, f"{mod.__name__}:Service.inherited")
    assert is_wrapped(vars(mod.Service)["inherited"])
    assert vars(mod.Base)["inherited"] is original
    with pytest.raises(PermissionError):
        mod.Base().inherited()  # not a target: not recorded
    with pytest.raises(PermissionError):
        mod.Service().inherited()
    assert failures(telemetry) == [("PermissionError", False, "auto")]


def test_module_wildcard_wraps_functions_defined_there(telemetry, modules, instrumentor) -> None:
    mod = modules.load(
        "star",
        """
        from os.path import join
        import json

        def one():
            return 1

        async def two():
            return 2

        class Keep:
            def m(self):
                return 3

        value = 4
        """,
    )
    instrument(instrumentor, f"{mod.__name__}:*")
    assert is_wrapped(mod.one)
    assert is_wrapped(mod.two)
    assert not is_wrapped(mod.join)  # imported from elsewhere
    assert not is_wrapped(mod.Keep)
    assert not is_wrapped(vars(mod.Keep)["m"])
    assert mod.one() == 1
    assert asyncio.run(mod.two()) == 2
    assert mod.value == 4


def test_a_module_imported_later_is_wrapped_when_imported(telemetry, modules, instrumentor) -> None:
    name = modules.write("late.pkg.jobs", "def run(x):\n    return [][x]\n")
    parent = name.rsplit(".", 2)[0]
    instrument(instrumentor, f"{name}:run")
    assert parent not in sys.modules  # instrumenting imported nothing
    jobs = importlib.import_module(name)
    assert is_wrapped(jobs.run)
    with pytest.raises(IndexError):
        jobs.run(0)
    assert failures(telemetry) == [("IndexError", False, "auto")]


def test_from_imports_made_before_instrumenting_are_rebound(
    telemetry, modules, instrumentor
) -> None:
    target = modules.load("target", "def charge(x):\n    return 1 / x\n")
    consumer = modules.load("consumer", f"from {target.__name__} import charge\nalias = charge\n")
    original = target.charge
    instrument(instrumentor, f"{target.__name__}:charge")
    assert consumer.charge is target.charge
    assert consumer.alias is target.charge
    assert is_wrapped(consumer.charge)
    with pytest.raises(ZeroDivisionError):
        consumer.charge(0)
    assert failures(telemetry) == [("ZeroDivisionError", False, "auto")]
    instrumentor.uninstrument()
    assert consumer.charge is original
    assert consumer.alias is original


def test_a_re_exported_function_imported_later_is_wrapped_where_callers_find_it(
    telemetry, modules, instrumentor
) -> None:
    impl = modules.write("reexp.impl", "def f():\n    raise KeyError('k')\n")
    package = impl.rsplit(".", 1)[0]
    (modules.root / package / "__init__.py").write_text("from .impl import f\n")
    instrument(instrumentor, f"{impl}:f")
    pkg = importlib.import_module(package)
    assert is_wrapped(pkg.f)
    assert pkg.f is sys.modules[impl].f


def test_a_circular_from_import_made_while_importing_the_target_is_rebound(
    telemetry, modules, instrumentor
) -> None:
    helper = modules.write("circ.helper", "")
    target = modules.write("circ.target", f"def f():\n    return 1\n\nimport {helper}\n")
    (modules.root / f"{helper.replace('.', '/')}.py").write_text(f"from {target} import f\n")
    unrelated = modules.load("unrelated", "def f():\n    return 2\n")
    instrument(instrumentor, f"{target}:f")
    importlib.import_module(target)
    assert is_wrapped(sys.modules[helper].f)
    assert sys.modules[helper].f is sys.modules[target].f
    assert not is_wrapped(unrelated.f)


def test_a_missing_submodule_is_reported_once_its_package_is_imported(
    telemetry, modules, instrumentor, caplog
) -> None:
    package = modules.write("sub.real", "").rsplit(".", 1)[0]
    caplog.set_level(logging.WARNING, logger="faultlens")
    instrument(instrumentor, f"{package}.nothere:f,{package}.real:g")
    assert caplog.records == []  # the package's path is not known before it is imported
    importlib.import_module(package)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"faultlens: FAULTLENS_INSTRUMENT target '{package}.nothere:f' not wrapped: "
        f"module '{package}.nothere' not found (wrapped if it is ever imported)"
    ]


def test_bad_targets_get_one_warning_each_and_the_rest_still_works(
    telemetry, modules, instrumentor, caplog
) -> None:
    mod = modules.load(
        "bad",
        """
        class Cart:
            total = 3

            @property
            def size(self):
                return 1

        def good():
            raise ValueError("good")

        count = 3
        """,
    )
    n = mod.__name__
    caplog.set_level(logging.WARNING, logger="faultlens")
    bad = [
        f"{n}:missing",
        f"{n}:Cart",
        f"{n}:count",
        f"{n}:Cart.size",
        f"{n}:Cart.total",
        f"{n}:Cart.nope",
        f"{n}:Nope.m",
        f"{n}:count.m",
        "faultlens_no_such_module:f",
        "faultlens_no_such_module.sub:Cls.*",
    ]
    instrument(instrumentor, ",".join([*bad, "this is not a target", f"{n}:good"]))
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == len(bad) + 1
    for target in bad:
        assert sum(repr(target) in m for m in messages) == 1, target
    assert any("'this is not a target' ignored" in m for m in messages)
    assert "is a class (name" in next(m for m in messages if f"'{n}:Cart'" in m)
    assert "not found" in next(m for m in messages if "faultlens_no_such_module:f" in m)
    with pytest.raises(ValueError):
        mod.good()
    assert failures(telemetry) == [("ValueError", False, "auto")]


def test_wildcards_that_match_nothing_are_silent(telemetry, modules, instrumentor, caplog) -> None:
    """``module:*`` over every module of a package meets modules of constants and classes
    only (pygments' styles): a glob matching nothing is no problem, and a warning printed
    to the program's stderr at import time is something a program notices (pygments'
    own ``test_L_opt`` asserts its stderr is empty)."""
    empty = modules.load("consts", "class Style:\n    colour = 'red'\n\nLIMIT = 3\n")
    later = modules.write("consts_later", "class Other:\n    pass\n")
    caplog.set_level(logging.DEBUG, logger="faultlens")
    n = empty.__name__
    instrument(instrumentor, f"{n}:*,{n}:Style.*,{later}:*,{later}:Other.*")
    importlib.import_module(later)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert empty.Style.colour == "red"


def test_a_module_imported_later_with_a_bad_target_warns_at_import_and_imports(
    telemetry, modules, instrumentor, caplog
) -> None:
    name = modules.write("lateb", "def ok():\n    return 1\n")
    caplog.set_level(logging.WARNING, logger="faultlens")
    instrument(instrumentor, f"{name}:ok,{name}:gone")
    assert caplog.records == []
    mod = importlib.import_module(name)
    assert mod.ok() == 1
    assert is_wrapped(mod.ok)
    assert [r.getMessage() for r in caplog.records] == [
        f"faultlens: FAULTLENS_INSTRUMENT target '{name}:gone' not wrapped: "
        f"module '{name}' has no attribute 'gone'"
    ]


def test_a_module_that_fails_to_import_gets_one_warning_and_the_error_goes_on(
    telemetry, modules, instrumentor, caplog
) -> None:
    name = modules.write("broken", "import json\nraise RuntimeError('no config file')\n")
    other = modules.write("fine", "def ok():\n    return 2\n")
    caplog.set_level(logging.WARNING, logger="faultlens")
    instrument(instrumentor, f"{name}:run,{name}:stop,{other}:ok")
    for _ in range(2):  # the program's own error, every time it imports
        with pytest.raises(RuntimeError, match="no config file"):
            importlib.import_module(name)
    assert importlib.import_module(other).ok() == 2
    assert [r.getMessage() for r in caplog.records] == [
        f"faultlens: FAULTLENS_INSTRUMENT target '{name}:{target}' not wrapped: module "
        f"'{name}' failed to import (RuntimeError: no config file); the error goes on to the "
        "program as it would without faultlens"
        for target in ("run", "stop")
    ]
    instrumentor.uninstrument()
    assert not any(type(finder).__name__ == "ImportFailureWatch" for finder in sys.meta_path)


def test_an_unpatchable_class_is_reported_and_its_import_still_succeeds(
    telemetry, modules, instrumentor, caplog
) -> None:
    name = modules.write(
        "frozen",
        """
        class Frozen(type):
            def __setattr__(cls, key, value):
                raise TypeError("frozen class")

        class Config(metaclass=Frozen):
            def load(self):
                return 1
        """,
    )
    caplog.set_level(logging.WARNING, logger="faultlens")
    instrument(instrumentor, f"{name}:Config.load")
    mod = importlib.import_module(name)
    assert mod.Config().load() == 1
    assert "cannot be replaced" in caplog.records[0].getMessage()


def test_logging_capture_and_hooks_come_with_the_instrumentor(
    telemetry, modules, instrumentor
) -> None:
    instrument(instrumentor, None)
    try:
        raise TimeoutError("pricing timed out")
    except TimeoutError:
        logging.getLogger("shop.pricing").exception("using the cached rate")
    assert failures(telemetry) == [("TimeoutError", True, "logging")]
    assert excepthooks_installed()
    assert sys.excepthook is sys.__excepthook__  # uncaught exceptions without replacing it


def test_logging_capture_can_be_left_out(telemetry, instrumentor) -> None:
    instrument(instrumentor, None, logging_capture=False)
    try:
        raise TimeoutError("pricing timed out")
    except TimeoutError:
        logging.getLogger("shop.pricing").exception("using the cached rate")
    assert failures(telemetry) == []


def test_disabled_faultlens_instruments_nothing(telemetry, modules, instrumentor) -> None:
    mod = modules.load("off", "def f():\n    return 1\n")
    faultlens.configure(disabled=True)
    instrument(instrumentor, f"{mod.__name__}:f")
    assert not is_wrapped(mod.f)
    assert not excepthooks_installed()
    assert instrumentor.session is None


def test_instrument_never_raises(telemetry, instrumentor, monkeypatch, caplog) -> None:
    from faultlens.instrumentation import _session as session

    def broken(self, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(session.Session, "start", broken)
    instrument(instrumentor, "a:b")
    assert "internal error in FaultlensInstrumentor.instrument" in caplog.text


def test_the_entry_point_names_the_instrumentor() -> None:
    from importlib.metadata import entry_points

    from faultlens.instrumentation import FaultlensInstrumentor

    (point,) = [
        e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "faultlens"
    ]
    assert point.load() is FaultlensInstrumentor
    assert FaultlensInstrumentor().instrumentation_dependencies() == ()
