"""Waiting for modules: wrapt post-import hooks that can be taken back.

:func:`when_imported` registers a post-import hook through
:func:`wrapt.register_post_import_hook` and returns a :class:`HookHandle`;
:meth:`HookHandle.remove` takes the hook out of wrapt's registry again (wrapt
has no public call for that, so the handle edits ``wrapt.importer``'s table
under wrapt's own lock, and the hook also checks a flag so it does nothing once
removed even if the table ever changes shape). wrapt's import finder, shared by
everyone using post-import hooks, stays on ``sys.meta_path``; with no hooks
registered for a module it steps aside at once.

:func:`find_missing` tells whether a module can be imported at all without
importing anything: it looks up the first part of the dotted name that is not
imported yet, whose parent, if any, is imported already.
:class:`ImportFailureWatch` tells when a target's module is found but its
import raises.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import wrapt


@dataclass(eq=False, slots=True)
class HookHandle:
    """A registered post-import hook; :meth:`remove` unregisters it."""

    module: str
    callback: Callable[[ModuleType], None]
    active: bool = field(default=True)

    def __call__(self, module: ModuleType) -> None:
        if self.active:
            self.callback(module)

    def remove(self) -> None:
        """Unregister (idempotent); a call already under way still finishes."""
        self.active = False
        importer: Any = sys.modules.get("wrapt.importer")
        hooks = getattr(importer, "_post_import_hooks", None)
        lock = getattr(importer, "_post_import_hooks_lock", None)
        if not isinstance(hooks, dict) or lock is None:
            return
        with lock:
            pending = hooks.get(self.module)
            if isinstance(pending, list) and self in pending:
                pending.remove(self)
                if not pending and self.module not in sys.modules:
                    del hooks[self.module]

    def registered(self) -> bool:
        """True while wrapt still holds this hook (for tests and diagnostics)."""
        importer: Any = sys.modules.get("wrapt.importer")
        hooks = getattr(importer, "_post_import_hooks", None) or {}
        return self in hooks.get(self.module, ())


def when_imported(module: str, callback: Callable[[ModuleType], None]) -> HookHandle:
    """Call ``callback(module)`` once ``module`` has been imported (now, if it already is)."""
    handle = HookHandle(module, callback)
    wrapt.register_post_import_hook(handle, module)
    return handle


def first_missing(module: str) -> str | None:
    """The shortest dotted prefix of ``module`` not in ``sys.modules`` (None: all imported)."""
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if prefix not in sys.modules:
            return prefix
    return None


def find_missing(prefix: str) -> str | None:
    """Why ``prefix`` (whose parent is imported) cannot be found, or None if it can.

    Imports nothing: a submodule is looked up on its already-imported parent's
    ``__path__``. A top-level module is looked up through ``sys.meta_path`` and,
    failing that, in the directory Python will put first on ``sys.path`` for the
    program (the script's directory, or the working directory for ``-m``/``-c``),
    which is not there yet while ``sitecustomize`` runs.
    """
    try:
        if importlib.util.find_spec(prefix) is not None:
            return None
        first = program_path_entry()
        if (
            "." not in prefix
            and first is not None
            and importlib.machinery.PathFinder.find_spec(prefix, [first]) is not None
        ):
            return None
    except (ImportError, ValueError) as err:
        return f"module {prefix!r} cannot be found ({err})"
    return f"module {prefix!r} not found"


def program_path_entry() -> str | None:
    """The directory Python puts (or has put) first on ``sys.path`` for the program."""
    if getattr(sys.flags, "safe_path", False):
        return None
    argv: list[str] = getattr(sys, "argv", None) or [""]
    if argv[0] in ("", "-c", "-m"):
        return os.getcwd()
    return os.path.dirname(os.path.realpath(argv[0]))


def is_main_script(module: str) -> bool:
    """True when ``module`` names the script Python runs as ``__main__`` (``python app.py``)."""
    argv: list[str] = getattr(sys, "argv", None) or [""]
    script = Path(argv[0])
    return script.suffix == ".py" and script.stem == module


class ImportFailureWatch(importlib.abc.MetaPathFinder):
    """Reports modules whose import raises, without changing what the import does.

    Placed first on ``sys.meta_path``, it finds a watched module through the
    finders after it and wraps the loader's ``exec_module``: when the module's
    body raises, ``on_failure(name, error)`` is called and the very same
    exception propagates. Other modules, and every other loader method, are
    untouched. :meth:`remove` takes it off ``sys.meta_path``.
    """

    def __init__(self, names: set[str], on_failure: Callable[[str, BaseException], None]) -> None:
        self.names = names
        self.on_failure = on_failure
        self._finding = threading.local()

    def install(self) -> ImportFailureWatch:
        """Put the watch first on ``sys.meta_path`` (idempotent)."""
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        return self

    def remove(self) -> None:
        """Take the watch off ``sys.meta_path`` (idempotent)."""
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names or getattr(self._finding, "active", False):
            return None
        self._finding.active = True
        spec = None
        try:
            for finder in list(sys.meta_path):
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        except Exception:  # finding is the other finders' business; stay out of it
            return None
        finally:
            self._finding.active = False
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        spec.loader = _ReportingLoader(loader, fullname, self.on_failure)
        return spec


class _ReportingLoader(importlib.abc.Loader):
    """A loader that reports a module body's exception and re-raises it."""

    def __init__(
        self, loader: Any, name: str, on_failure: Callable[[str, BaseException], None]
    ) -> None:
        self._loader = loader
        self._name = name
        self._on_failure = on_failure

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        try:
            self._loader.exec_module(module)
        except BaseException as error:
            with contextlib.suppress(Exception):
                self._on_failure(self._name, error)
            raise
