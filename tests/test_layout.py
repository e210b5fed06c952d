"""The repository's layout promises: the suite collects with plain ``pytest`` as with
``python -m pytest``; the package's modules form no import cycle and keep to their
layers (an import-linter-style check over the source); the control client loads none
of the processor."""

from __future__ import annotations

import ast
import functools
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_plain_pytest_collects_modules_that_import_test_helpers(tmp_path: Path) -> None:
    # `pytest` (the script) does not put the working directory on sys.path; the modules
    # below import `tests.*` helpers and failed to collect before pyproject set pythonpath.
    pytest_script = Path(sys.executable).with_name("pytest")
    # Nothing may put the repository root on the path for it (other entries may stay).
    path = [
        entry
        for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if entry and Path(entry).resolve() != ROOT
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    result = subprocess.run(
        [
            str(pytest_script),
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_processor_writer.py",
            "tests/reliability/test_reliability_fuzz.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower(), result.stdout


PACKAGE = ROOT / "collector_exporter" / "faultlens_collector"
SDK = ROOT / "sdk" / "faultlens"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: Every module of the package (the generated protobuf code aside), by dotted name.
MODULES: dict[str, Path] = {
    module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if "_proto" not in path.parts
}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes of ``tree`` outside ``if TYPE_CHECKING:`` blocks (imports there are types
    only, never run)."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            if (
                isinstance(child, ast.If)
                and isinstance(child.test, ast.Name)
                and child.test.id == "TYPE_CHECKING"
            ):
                stack.extend(child.orelse)
                continue
            stack.append(child)
    return nodes


def imports_of(path: Path) -> set[str]:
    """Every module a source file imports at run time, at any depth — function-local
    imports count, those under ``if TYPE_CHECKING:`` do not. ``from a import b`` is
    ``a.b`` when that is a module of the package, else ``a``."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports at run time."""
    return {
        name: {module for module in imports_of(path) if module in MODULES and module != name}
        for name, path in MODULES.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle_even_through_function_local_imports() -> None:
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def offenders(
    sources: tuple[str, ...], forbidden: tuple[str, ...], *, allowed: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Modules under any of ``sources`` that import (at run time) a module under any of
    ``forbidden`` (dotted prefixes, below ``faultlens_collector``), except ``allowed``."""
    edges = graph()

    def under(module: str, prefixes: tuple[str, ...]) -> bool:
        return any(
            module == f"faultlens_collector.{prefix}"
            or module.startswith(f"faultlens_collector.{prefix}.")
            for prefix in prefixes
        )

    found = {
        name: sorted(
            target for target in targets if under(target, forbidden) and not under(target, allowed)
        )
        for name, targets in edges.items()
        if under(name, sources)
    }
    return {name: targets for name, targets in found.items() if targets}


def test_the_data_path_knows_nothing_about_rules() -> None:
    # What ingest extracts is what the listeners ask for (processor/listeners.py); the
    # rules are the action engine's business. Only the assembly (processor/server.py)
    # builds the engine and its listener.
    assert offenders(("ingest", "groups", "processor"), ("actions",)) == {
        "faultlens_collector.processor.server": [
            "faultlens_collector.actions",
            "faultlens_collector.actions.listener",
            "faultlens_collector.actions.store",
        ]
    }
    # The data path uses the processor's seam and its self-metrics, nothing else of it.
    assert offenders(("ingest", "groups"), ("processor", "control", "store", "alerts")) == {
        "faultlens_collector.ingest.service": [
            "faultlens_collector.processor.listeners",
            "faultlens_collector.processor.selfmetrics",
        ],
    }


def test_alerts_are_delivered_without_the_engine() -> None:
    assert offenders(("alerts", "delivery"), ("actions", "control", "processor", "store")) == {}


def test_the_stores_serve_every_layer_and_depend_on_none_above() -> None:
    assert offenders(("store", "groups"), ("control", "processor", "cli", "demo")) == {}


def test_no_sqlite_outside_the_store() -> None:
    # The group model, the writer, the listeners, the action engine and the control API
    # see the store protocols only; a second backend adds a package under store/.
    offending = sorted(
        name
        for name, path in MODULES.items()
        if not name.startswith("faultlens_collector.store")
        and any(module.split(".")[0] == "sqlite3" for module in imports_of(path))
    )
    assert offending == []


_FRESH_IMPORTS = """
import importlib, sys
failed = {}
for module in sys.argv[1:]:
    for name in [name for name in sys.modules if name.startswith("faultlens_collector")]:
        del sys.modules[name]
    try:
        importlib.import_module(module)
    except Exception as exc:
        failed[module] = f"{type(exc).__name__}: {exc}"
print(failed)
"""


def test_each_control_and_processor_module_imports_first_in_a_fresh_interpreter() -> None:
    # Each module imported with none of the package loaded before it (as when it is the
    # first thing a program imports): an import cycle would fail one of them. (The graph
    # check above covers every module; this one runs them.)
    modules = [
        name
        for name in MODULES
        if name.startswith(
            (
                "faultlens_collector.control",
                "faultlens_collector.processor",
                "faultlens_collector.ingest",
            )
        )
    ]
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_IMPORTS, *modules],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert result.stdout.strip() == "{}", result.stdout
    assert len(modules) > 20


def test_the_control_client_loads_none_of_the_processor() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, faultlens_collector.control.client; "
            "print('\\n'.join(m for m in sys.modules if m.startswith('faultlens_collector')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "faultlens_collector.control.client" in loaded
    heavy = ("actions", "alerts", "store", "processor", "groups.store", "control.service")
    assert [
        module
        for module in loaded
        if any(module.startswith(f"faultlens_collector.{prefix}") for prefix in heavy)
    ] == []


#: What faultlens_collector may import from the SDK: the public modules, each name of
#: theirs that is public (in ``__all__`` where the module has one), and faultlens.shared
#: — the module the SDK shares with the processor on purpose (docs/sdk.md).
PUBLIC_SDK_MODULES = (
    "faultlens",
    "faultlens.semconv",
    "faultlens.shared",
    "faultlens.resilience",
    "faultlens.resilience.errors",
    "faultlens.resilience.startup",
    "faultlens.instrumentation",
)


def sdk_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of every import of the SDK in a source file — under
    ``if TYPE_CHECKING:`` and inside functions too; ``name`` is None for ``import m``."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(
                (node.lineno, alias.name, None)
                for alias in node.names
                if alias.name.split(".")[0] == "faultlens"
            )
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == "faultlens"
        ):
            found.extend((node.lineno, node.module, alias.name) for alias in node.names)
    return found


def not_public(module: str, name: str | None) -> bool:
    """True if importing ``name`` from ``module`` (or the module) reaches past the SDK's
    public API and faultlens.shared."""
    if module not in PUBLIC_SDK_MODULES:
        return True
    if name is None or name == "__version__" or f"{module}.{name}" in PUBLIC_SDK_MODULES:
        return False
    exported = getattr(importlib.import_module(module), "__all__", None)
    return name.startswith("_") if exported is None else name not in exported


def test_the_processor_uses_only_the_sdks_public_api_and_faultlens_shared() -> None:
    # The processor once imported the recorder and the resilience layer's halt module
    # directly; what both sides must do the same way is now faultlens.shared.
    offending = [
        f"{name}:{line}: {module}" + (f" import {item}" if item else "")
        for name, path in MODULES.items()
        for line, module, item in sdk_imports(path)
        if not_public(module, item)
    ]
    assert offending == []
    uses = {(module, item) for path in MODULES.values() for _, module, item in sdk_imports(path)}
    assert ("faultlens.shared", "report_internal_error") in uses
    assert len(uses) > 20


def test_the_public_api_check_finds_a_private_import(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import faultlens._recorder\n"
        "from faultlens.shared import parse_endpoint\n"
        "from faultlens.resilience import _names\n"
        "if TYPE_CHECKING:\n"
        "    from faultlens.resilience._halts import Halt\n"
        "def later():\n"
        "    from faultlens import record_failure, reset_everything\n"
    )
    assert [
        (module, item) for _, module, item in sdk_imports(source) if not_public(module, item)
    ] == [
        ("faultlens._recorder", None),
        ("faultlens.resilience", "_names"),
        ("faultlens.resilience._halts", "Halt"),
        ("faultlens", "reset_everything"),
    ]


def _loaded_after(module: str) -> list[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def test_the_command_lines_clients_load_only_the_sdk_helpers_they_use() -> None:
    # Importing the SDK package runs only its __init__ (names load on first use), so the
    # control client loads endpoint parsing and nothing else of the SDK: not the
    # recorder, asyncio, wrapt or the OpenTelemetry SDK (most of its import time before).
    loaded = _loaded_after("faultlens_collector.control.client")
    assert [name for name in loaded if name.split(".")[0] == "faultlens"] == [
        "faultlens",
        "faultlens._endpoint",
        "faultlens._lazy",
        "faultlens._version",
        "faultlens.shared",
    ]
    assert not {"wrapt", "opentelemetry.sdk.trace", "opentelemetry.trace"} & set(loaded)
    # `faultlens halts` formats halt keys without loading the resilience layer.
    loaded = _loaded_after("faultlens_collector.cli.halts")
    assert "faultlens._halt_keys" in loaded
    assert not [name for name in loaded if name.startswith("faultlens.resilience")]


ARCHITECTURE = ROOT / "docs" / "architecture.md"


def test_every_module_the_architecture_page_names_exists() -> None:
    text = ARCHITECTURE.read_text()
    named = set(re.findall(r"\b((?:[a-z_]+/)*[a-z_]+\.py)\b", text))
    files = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")}
    sdk_files = {path.relative_to(SDK.parent).as_posix() for path in SDK.rglob("*.py")}
    missing = sorted(
        path
        for path in named
        if path.removeprefix("faultlens_collector/") not in files
        and not (ROOT / path).exists()
        # A bare name (the control package's table, the SDK's section) names a module of
        # some folder of either package.
        and not ("/" not in path and any(file.endswith(f"/{path}") for file in files | sdk_files))
    )
    assert missing == []
    assert len(named) > 30


def test_every_name_in_the_path_of_one_failure_exists_where_the_page_says() -> None:
    # Lines of the diagram read "<module path>  <Name or Name.attribute ...>".
    # The processor's diagram first, then the SDK's (paths under sdk/).
    diagrams = "".join(re.findall(r"```text\n(.*?)```", ARCHITECTURE.read_text(), re.DOTALL))
    checked = 0
    for path, names in re.findall(
        r"((?:[a-z_]+/)+[a-z_]+\.py)\s+([A-Za-z_][\w.]*(?:, [A-Za-z_][\w.]*)*)", diagrams
    ):
        if path.startswith("sdk/"):
            dotted = Path(path).relative_to("sdk").with_suffix("").parts
            module = importlib.import_module(".".join(dotted))
        else:
            module = importlib.import_module(module_name(PACKAGE / path))
        for name in names.split(", "):
            if not re.search(r"[A-Z_.]", name):
                continue  # a word of prose
            target: object = module
            for part in name.split("."):
                assert hasattr(target, part), f"{path}: {name}"
                target = getattr(target, part)
            checked += 1
    assert checked > 15
