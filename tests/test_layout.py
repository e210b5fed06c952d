"""The repository's layout promises: the suite collects with plain ``pytest`` as with
``python -m pytest``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_plain_pytest_collects_modules_that_import_test_helpers(tmp_path: Path) -> None:
    # `pytest` (the script) does not put the working directory on sys.path; the modules
    # below import `tests.*` helpers and failed to collect before pyproject set pythonpath.
    pytest_script = Path(sys.executable).with_name("pytest")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
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


def imports_of(path: Path) -> set[str]:
    """Every module a source file imports, at any level (``from a import b`` counts as
    ``a`` and ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def imported_modules(path: Path) -> set[str]:
    """The ``faultlens*`` modules of :func:`imports_of`."""
    return {name for name in imports_of(path) if name.startswith("faultlens")}


def modules_under(folder: str) -> dict[str, Path]:
    return {
        path.relative_to(PACKAGE).as_posix(): path
        for path in sorted((PACKAGE / folder).rglob("*.py"))
    }


def test_the_processor_knows_nothing_about_rules() -> None:
    # What ingest extracts is what the listeners ask for (processor/listeners.py); the
    # rules are the action engine's business.
    offending = {
        name: sorted(
            module
            for module in imported_modules(path)
            if module.startswith(
                ("faultlens_collector.actions.config", "faultlens_collector.actions.listener")
            )
        )
        for name, path in modules_under("processor").items()
        # The assembly builds the engine's listener; bulk triage runs hooks for groups.
        if name not in ("processor/server.py", "processor/triage.py")
    }
    assert {name: found for name, found in offending.items() if found} == {}


def test_no_sqlite_outside_the_store() -> None:
    # The group model, the writer, the listeners, the action engine and the control API
    # see the store protocols only; a second backend adds a package under store/.
    offending = sorted(
        name
        for name, path in modules_under(".").items()
        if not name.startswith("store/")
        and any(module.split(".")[0] == "sqlite3" for module in imports_of(path))
    )
    assert offending == []
