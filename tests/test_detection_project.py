"""Which code is the project's own (``faultlens scan`` / ``faultlens run`` defaults)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from faultlens_collector.detection import project as project_module
from faultlens_collector.detection.project import TargetError, find_project, resolve
from faultlens_collector.detection.run import RunSettings, targets_for

from tests.detection_support import make_package

ROOT = Path(__file__).resolve().parent.parent


def test_this_checkout_is_found_from_a_subfolder_with_setuptools_where() -> None:
    found = find_project(ROOT / "docs")
    assert found is not None
    assert found.name == "faultlens"
    assert [p.name for p in found.packages] == ["faultlens", "faultlens_collector"]
    modules = {m.name for p in found.packages for m in p.modules}
    assert "faultlens.resilience.startup" in modules
    assert "faultlens_collector.cli.__main__" in modules


def test_src_layout_skips_tests_and_marks_main_modules(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "thing"\n')
    for folder in ("src/thing", "src/thing/sub", "tests"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "src/thing/__main__.py").write_text("")
    (tmp_path / "src/thing/sub/mod.py").write_text("def f(): pass\n")
    found = find_project(tmp_path)
    assert found is not None
    (package,) = found.packages
    assert package.root == tmp_path / "src"
    assert [(m.name, m.importable) for m in package.modules] == [
        ("thing", True),
        ("thing.__main__", False),
        ("thing.sub", True),
        ("thing.sub.mod", True),
    ]


def test_an_installed_project_is_found_through_its_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_package(tmp_path / "site")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    monkeypatch.syspath_prepend(str(site))
    project_module._top_levels.cache_clear()
    try:
        found = find_project(checkout)
        assert found is not None
        (package,) = found.packages
        assert package.name == "shop"
        assert package.root is None  # importable as installed
        assert package.distribution == "shop"
        assert "shop.missing" in {m.name for m in package.modules}
        targets, in_app = targets_for(RunSettings(["true"]), found)
        assert in_app == ("shop",)
        if sys.version_info < (3, 12):
            assert "shop.fine:*" in targets.split(",")
            assert "shop:*" not in targets.split(",")  # defines no function
        else:
            assert targets == ""  # watched with sys.monitoring, nothing wrapped
    finally:
        project_module._top_levels.cache_clear()


def test_explicit_targets_never_include_faultlens_itself() -> None:
    targets, in_app = targets_for(
        RunSettings(["true"], instrument="shop.orders:*, faultlens._recorder:*"), None
    )
    assert targets == "shop.orders:*"
    assert in_app == ("shop",)


def test_resolve_reports_what_names_nothing(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="neither an importable package"):
        resolve(["no_such_thing_anywhere_xyz"], tmp_path)
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(TargetError, match="is not a Python file"):
        resolve(["notes.txt"], tmp_path)
    with pytest.raises(TargetError, match="no project here"):
        resolve([], tmp_path)
