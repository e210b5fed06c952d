"""One instrumentation run: what :class:`FaultlensInstrumentor` put in place, and its undoing.

:meth:`Session.start` installs the SDK's out-of-band hooks (the ones not
installed already), wraps the targets of modules already imported, rebinds
their ``from``-imported aliases, and registers post-import hooks for the other
modules, so targets are wrapped whenever their module gets imported.
:meth:`Session.stop` undoes exactly that: the post-import hooks are removed,
aliases and patched attributes get their original objects back (``is``), and
the hooks this session installed are uninstalled (ones installed before by
someone else stay).

Problems with a target are logged as one warning naming it, through the
``faultlens.instrumentation`` logger, and the target is skipped; nothing here
raises into the application or into ``opentelemetry-instrument``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType

from faultlens import _monitoring as monitoring
from faultlens._internal_errors import report_internal_error
from faultlens._monitoring import Monitor
from faultlens.instrumentation._aliases import Alias, rebind_aliases, scan_after_import
from faultlens.instrumentation._imports import (
    HookHandle,
    ImportFailureWatch,
    find_missing,
    first_missing,
    is_main_script,
    when_imported,
)
from faultlens.instrumentation._patching import Patch, TargetProblem, Wrapping
from faultlens.instrumentation._spec import SpecError, Target

_log = logging.getLogger("faultlens.instrumentation")

_MAIN_HINT = (
    "; functions of the script Python runs as __main__ cannot be wrapped by name from "
    "opentelemetry-instrument: move them into a module the script imports"
)


def warn_target(target: str, reason: str) -> None:
    """The one warning a target that cannot be wrapped gets."""
    _log.warning("faultlens: FAULTLENS_INSTRUMENT target %r not wrapped: %s", target, reason)


def warn_spec_error(error: SpecError) -> None:
    """The one warning a malformed ``FAULTLENS_INSTRUMENT`` entry gets."""
    _log.warning(
        "faultlens: FAULTLENS_INSTRUMENT entry %r ignored: %s (expected module:func, "
        "module:Class.method, module:Class.* or module:*)",
        error.entry,
        error.reason,
    )


class Session:
    """Targets wrapped, aliases rebound, import hooks and SDK hooks installed by one run."""

    def __init__(self, targets: list[Target]) -> None:
        self._lock = threading.RLock()
        self._targets: dict[str, list[Target]] = {}
        for target in targets:
            self._targets.setdefault(target.module, []).append(target)
        self.wrapping = Wrapping()
        self.monitor: Monitor | None = None
        self.aliases: list[Alias] = []
        self.import_hooks: list[HookHandle] = []
        self._uninstallers: list[Callable[[], None]] = []
        self._warned: set[str] = set()
        self.failure_watch = ImportFailureWatch(set(), self._import_failed)
        self.active = False

    @property
    def patches(self) -> list[Patch]:
        """Every attribute wrapped so far."""
        return list(self.wrapping.applied.values())

    def start(self, *, logging_capture: bool = True) -> None:
        """Install hooks, wrap what is imported, wait for the rest."""
        with self._lock:
            self.active = True
            self._install_sdk_hooks(logging_capture)
            if self._targets:
                self.wrapping.monitor = self.monitor = _engine()
            patches: list[Patch] = []
            for name, targets in self._targets.items():
                module = sys.modules.get(name)
                if module is None:
                    self._await(name)
                else:
                    patches += self._wrap(module, targets)
            self.aliases += rebind_aliases(patches)

    def stop(self) -> None:
        """Undo everything :meth:`start` and the import hooks did (idempotent)."""
        with self._lock:
            self.active = False
            for handle in self.import_hooks:
                handle.remove()
            self.import_hooks.clear()
            self.failure_watch.remove()
            for alias in reversed(self.aliases):
                alias.restore()
            self.aliases.clear()
            for patch in self.wrapping.restore_all():
                _log.debug("faultlens: %s.%s was replaced after wrapping; left as is", *_at(patch))
            while self._uninstallers:
                self._uninstallers.pop()()
            if self.monitor is not None:
                self.monitor.release_if_idle()

    def _install_sdk_hooks(self, logging_capture: bool) -> None:
        import faultlens
        from faultlens import _asyncio_hook as asyncio_hook
        from faultlens import _excepthooks as excepthooks
        from faultlens import _logcapture as logcapture
        from faultlens import _shutdown as shutdown
        from faultlens import _spanhook as spanhook

        parts = (
            (excepthooks.excepthooks_installed, excepthooks.uninstall_excepthooks),
            (asyncio_hook.asyncio_hook_installed, asyncio_hook.uninstall_asyncio_hook),
            (spanhook.span_hook_installed, spanhook.uninstall_span_hook),
            (shutdown.signal_flush_installed, shutdown.uninstall_signal_flush),
            (logcapture.logging_capture_installed, logcapture.uninstall_logging_capture),
        )
        before = [installed() for installed, _ in parts]
        faultlens.install(logging_capture=logging_capture)
        for was, (installed, uninstall) in zip(before, parts, strict=True):
            if not was and installed():
                self._uninstallers.append(uninstall)

    def _wrap(self, module: ModuleType, targets: list[Target]) -> list[Patch]:
        patches: list[Patch] = []
        for target in targets:
            try:
                patches += self.wrapping.apply(module, target)
            except TargetProblem as problem:
                hint = _MAIN_HINT if module.__name__ == "__main__" else ""
                self._warn(target, f"{problem}{hint}")
            except Exception as err:  # a hostile module or class: report, go on
                self._warn(target, f"{type(err).__name__}: {err}")
        return patches

    def _warn(self, target: Target, reason: str) -> None:
        """One warning per target and session, however many problems follow."""
        if target.text not in self._warned:
            self._warned.add(target.text)
            warn_target(target.text, reason)

    def _await(self, name: str) -> None:
        """Wrap ``name``'s targets once it is imported; warn now if it cannot be found.

        The hook goes on the module itself, so it runs as soon as the module's
        body has, before a parent package's ``from .module import func`` binds
        anything.
        """
        self.import_hooks.append(when_imported(name, self._on_import))
        self.failure_watch.names.add(name)
        self.failure_watch.install()
        self._check_findable(name)

    def _check_findable(self, name: str) -> None:
        """Warn if ``name`` cannot be imported; for a submodule of a package not imported
        yet, check again once the package is (finding it needs the package's path)."""
        missing = first_missing(name)
        if missing is None:
            return
        targets = self._targets[name]
        if missing == name and is_main_script(name):
            for target in targets:
                self._warn(target, f"{name!r} is the script being run{_MAIN_HINT}")
            return
        reason = find_missing(missing)
        if reason is not None:
            for target in targets:
                self._warn(target, f"{reason} (wrapped if it is ever imported)")
        elif missing != name:
            self.import_hooks.append(when_imported(missing, lambda _: self._recheck(name)))

    def _import_failed(self, name: str, error: BaseException) -> None:
        """The module of some targets was found but its import raised: say so, once."""
        with self._lock:
            if not self.active:
                return
            for target in self._targets.get(name, []):
                self._warn(
                    target,
                    f"module {name!r} failed to import ({type(error).__name__}: {error}); "
                    "the error goes on to the program as it would without faultlens",
                )

    def _recheck(self, name: str) -> None:
        try:
            with self._lock:
                if self.active:
                    self._check_findable(name)
        except Exception:
            report_internal_error("instrumentation import hook")

    def _on_import(self, module: ModuleType) -> None:
        """Post-import hook: wrap the module's targets. Never raises (it would fail the import)."""
        try:
            with self._lock:
                if not self.active:
                    return
                patches = self._wrap(module, self._targets.get(module.__name__, []))
                if patches:
                    self.aliases += rebind_aliases(patches, scan_after_import(module, patches))
        except Exception:
            report_internal_error("instrumentation import hook")


def _engine() -> Monitor | None:
    """The ``sys.monitoring`` engine on 3.12+; None (wrap instead) elsewhere or when no
    tool id is free, which gets one warning."""
    if not monitoring.supported():
        return None
    monitor = monitoring.acquire()
    if monitor is None:
        _log.warning(
            "faultlens: every sys.monitoring tool id faultlens may use (%s) is held by "
            "another tool; FAULTLENS_INSTRUMENT targets are wrapped instead",
            ", ".join(map(str, monitoring.TOOL_IDS)),
        )
    return monitor


def _at(patch: Patch) -> tuple[str, str]:
    return getattr(patch.owner, "__name__", repr(patch.owner)), patch.name
