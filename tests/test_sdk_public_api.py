"""The SDK's public names load on first use (faultlens._lazy): each package lists them
twice, as imports under ``if TYPE_CHECKING:`` (what mypy and readers see) and in the
table that runs. These tests hold the two lists to the same names and values, and
``import faultlens`` to loading nothing but its ``__init__``."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import faultlens
import faultlens.shared
import pytest

LAZY_PACKAGES = (faultlens, faultlens.shared)


def type_checking_imports(module: ModuleType) -> dict[str, tuple[str, str]]:
    """``public name -> (module, name)`` for each import under ``if TYPE_CHECKING:``."""
    tree = ast.parse(Path(str(module.__file__)).read_text())
    found: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                assert statement.module
                for alias in statement.names:
                    found[alias.asname or alias.name] = (statement.module, alias.name)
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda m: m.__name__)
def test_the_names_type_checkers_see_are_the_names_that_load(package: ModuleType) -> None:
    declared = type_checking_imports(package)
    assert set(package.__all__) - {"__version__"} <= set(declared)
    assert set(declared) <= set(dir(package))
    for public, (source, name) in declared.items():
        origin = importlib.import_module(source)
        expected = getattr(origin, name, None)
        if expected is None:  # `from faultlens import semconv`: the submodule itself
            expected = importlib.import_module(f"{source}.{name}")
        assert getattr(package, public) is expected, public


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda m: m.__name__)
def test_an_unknown_name_is_an_attribute_error(package: ModuleType) -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        package.nothing_here  # noqa: B018
    assert not hasattr(package, "_recorder_state")


def test_import_faultlens_loads_only_its_init() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, faultlens; print('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [name for name in loaded if name.startswith("faultlens")] == [
        "faultlens",
        "faultlens._lazy",
        "faultlens._version",
    ]
    assert "opentelemetry.sdk.trace" not in loaded


def test_reset_is_deprecated_in_favour_of_set_testing() -> None:
    assert "reset" not in faultlens.__all__
    with faultlens.set_testing(), pytest.deprecated_call(match="set_testing"):
        faultlens.reset()


def test_status_is_a_method_of_every_stateful_primitive() -> None:
    # RemoteHalts.status was a property where CircuitBreaker.status() was a method.
    from faultlens.resilience import CircuitBreaker, FailureTracker, RemoteHalts

    for primitive in (CircuitBreaker, FailureTracker, RemoteHalts):
        assert inspect.isfunction(inspect.getattr_static(primitive, "status")), primitive


def test_no_primitive_takes_a_clock_or_a_sleep() -> None:
    # Test hooks left the public signatures: faultlens' tests use the private
    # faultlens.resilience._testing.clocks(), applications resilience.set_testing().
    from faultlens.resilience import CircuitBreaker, FailureTracker, Retry

    for primitive in (CircuitBreaker, FailureTracker, Retry):
        hooks = {"clock", "wall_clock", "sleep", "async_sleep"}
        assert not hooks & set(inspect.signature(primitive).parameters), primitive


def test_set_testing_puts_the_previous_configuration_back() -> None:
    from faultlens._recorder import runtime_settings

    faultlens.register_rule(KeyError, category="dependency")  # what an application set up
    try:
        before = runtime_settings()
        with faultlens.set_testing(storm_burst=7):
            assert runtime_settings().storm_burst == 7
            assert faultlens.classify(KeyError()).category == "lookup"  # start-up rules
            faultlens.register_rule(KeyError, category="configuration")
        assert runtime_settings() == before
        assert faultlens.classify(KeyError()).category == "dependency"
        with pytest.raises(TypeError):
            faultlens.set_testing(no_such_setting=1)  # a bad override changes nothing
        assert runtime_settings() == before
        assert faultlens.classify(KeyError()).category == "dependency"
    finally:
        faultlens.set_testing()  # the start-up state for the tests that follow
