"""Which code is the project's own: packages, their modules and files, their distribution.

:func:`find_project` walks up from a folder to the nearest ``pyproject.toml``
(or ``setup.cfg`` / ``setup.py``) and finds the project's top-level packages in
its source tree — ``[tool.setuptools.packages.find] where`` folders, else
``src/``, else the project folder — skipping tests, docs, examples, benchmarks,
build output and virtual environments. A project whose tree holds no package
(it is installed, not checked out here) gets the top-level packages its
installed distribution (``[project] name``) declares.

:func:`resolve` turns ``faultlens scan`` arguments — importable package or
module names, distribution names, package folders, source trees, ``.py`` files —
into :class:`Package` objects listing every module and file.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

_MARKERS: Final = ("pyproject.toml", "setup.cfg", "setup.py")
_SKIP_DIRS: Final = frozenset(
    {
        "tests",
        "test",
        "testing",
        "docs",
        "doc",
        "examples",
        "example",
        "benchmarks",
        "build",
        "dist",
        "node_modules",
        "site-packages",
        "__pycache__",
    }
)


class TargetError(ValueError):
    """An argument names nothing that can be scanned."""


@dataclass(frozen=True, slots=True)
class Module:
    """One module: its dotted name and file; ``importable`` False for ``__main__``."""

    name: str
    path: Path
    importable: bool = True


@dataclass(slots=True)
class Package:
    """A top-level package (or lone module) to scan."""

    name: str
    #: The folder to put on ``sys.path`` (None: importable as installed).
    root: Path | None
    modules: list[Module] = field(default_factory=list)
    #: The installed distribution that provides it (its entry points are loaded).
    distribution: str | None = None


@dataclass(frozen=True, slots=True)
class Project:
    """The project around a folder."""

    root: Path
    name: str | None
    packages: tuple[Package, ...]


def find_project(start: Path) -> Project | None:
    """The project around ``start`` (see the module docstring), or None outside one."""
    folder = start.resolve()
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).is_file() for marker in _MARKERS):
            return _project_at(candidate)
    return None


def _project_at(root: Path) -> Project:
    data: dict[str, Any] = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
    name = data.get("project", {}).get("name")
    name = str(name) if name else None
    where = (
        data.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("where")
    )
    if isinstance(where, list) and where:
        roots = [root / str(item) for item in where]
    elif (root / "src").is_dir():
        roots = [root / "src"]
    else:
        roots = [root]
    packages = [
        _package_from_dir(entry, name.replace("-", "_") if name else None)
        for folder in roots
        if folder.is_dir()
        for entry in sorted(folder.iterdir())
        if _is_package_dir(entry)
    ]
    if not packages and name:
        packages = [_installed(top) for top in distribution_packages(name)]
    return Project(root, name, tuple(packages))


def _is_package_dir(path: Path) -> bool:
    return (
        path.is_dir()
        and (path / "__init__.py").is_file()
        and path.name.isidentifier()
        and path.name not in _SKIP_DIRS
    )


def _package_from_dir(path: Path, distribution: str | None = None) -> Package:
    package = Package(path.name, path.parent, distribution=_installed_distribution(path.name))
    package.modules = list(iter_modules(path, path.name))
    if package.distribution is None and distribution:
        package.distribution = distribution if _has_distribution(distribution) else None
    return package


def iter_modules(folder: Path, name: str) -> Iterator[Module]:
    """Every module of the package in ``folder`` (named ``name``), sub-packages included,
    in a stable order; ``__main__`` modules are listed but not importable."""
    yield Module(name, folder / "__init__.py")
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            if (entry / "__init__.py").is_file() and entry.name.isidentifier():
                yield from iter_modules(entry, f"{name}.{entry.name}")
        elif entry.suffix == ".py" and entry.name != "__init__.py" and entry.stem.isidentifier():
            yield Module(f"{name}.{entry.stem}", entry, importable=entry.stem != "__main__")


def distribution_packages(distribution: str) -> list[str]:
    """The top-level import names an installed distribution provides."""
    wanted = _normalize(distribution)
    return sorted(
        top
        for top, owners in _top_levels().items()
        if any(_normalize(owner) == wanted for owner in owners) and top.isidentifier()
    )


def project_modules(project: Project) -> list[str]:
    """Every importable module name of the project's packages."""
    return [m.name for package in project.packages for m in package.modules if m.importable]


def resolve(arguments: Sequence[str], cwd: Path) -> list[Package]:
    """``faultlens scan`` arguments as packages; the current project when none are given.
    Raises :class:`TargetError` for an argument that names nothing scannable."""
    if not arguments:
        project = find_project(cwd)
        if project is None or not project.packages:
            raise TargetError(
                "no project here (no pyproject.toml with packages): name packages or paths"
            )
        return list(project.packages)
    packages: list[Package] = []
    for argument in arguments:
        path = (cwd / argument) if not os.path.isabs(argument) else Path(argument)
        if path.exists():
            packages += _from_path(path.resolve())
        else:
            packages += _from_name(argument)
    return packages


def _from_path(path: Path) -> list[Package]:
    if path.is_file():
        if path.suffix != ".py":
            raise TargetError(f"{path} is not a Python file")
        return [Package(path.stem, path.parent, [Module(path.stem, path)])]
    if (path / "__init__.py").is_file():
        return [_package_from_dir(path)]
    project = find_project(path) if any((path / m).is_file() for m in _MARKERS) else None
    if project is not None and project.packages:
        return list(project.packages)
    found = [_package_from_dir(entry) for entry in sorted(path.iterdir()) if _is_package_dir(entry)]
    found += [
        Package(entry.stem, path, [Module(entry.stem, entry)])
        for entry in sorted(path.glob("*.py"))
        if entry.stem.isidentifier() and entry.stem not in ("setup", "conftest")
    ]
    if not found:
        raise TargetError(f"{path} holds no Python package or module")
    return found


def _from_name(name: str) -> list[Package]:
    top = name.split(".", maxsplit=1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        tops = distribution_packages(name)
        if tops:
            return [_installed(top) for top in tops]
        raise TargetError(f"{name!r} is neither an importable package, a distribution nor a path")
    package = _installed(top)
    if name != top:
        package.modules = [
            m for m in package.modules if m.name == name or m.name.startswith(name + ".")
        ]
        if not package.modules:
            raise TargetError(f"{name!r}: no such module in {top}")
    return [package]


def _installed(top: str) -> Package:
    """An importable top-level package or module, as installed (no root to add)."""
    spec = importlib.util.find_spec(top)
    if spec is None:
        raise TargetError(f"{top!r} cannot be imported")
    package = Package(top, None, distribution=_installed_distribution(top))
    locations = list(spec.submodule_search_locations or [])
    if locations:
        for location in locations:
            package.modules += list(iter_modules(Path(location), top))
        if not (Path(locations[0]) / "__init__.py").is_file():  # a namespace package
            package.modules = [m for m in package.modules if m.name != top]
    elif spec.origin and spec.origin.endswith(".py"):
        package.modules = [Module(top, Path(spec.origin))]
    return package


def _installed_distribution(top: str) -> str | None:
    owners = _top_levels().get(top, [])
    return owners[0] if owners else None


@functools.lru_cache(maxsize=1)
def _top_levels() -> Mapping[str, list[str]]:
    """Top-level import names → the installed distributions that provide them."""
    return importlib.metadata.packages_distributions()


def _has_distribution(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _normalize(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")
