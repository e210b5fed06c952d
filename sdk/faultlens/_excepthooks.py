"""Record uncaught exceptions: ``sys.excepthook`` and ``threading.excepthook``.

An exception that reaches either hook is recorded as an escaped failure with
source ``excepthook`` and severity at least ``critical``, faultlens and the
OpenTelemetry providers are flushed (bounded by ``flush_timeout_millis``) so the
failure leaves the process before it exits, and the previously installed hook
runs as before. ``KeyboardInterrupt`` is passed on without being recorded.

Installing twice is harmless; uninstalling restores the previous hooks only if
faultlens' hooks are still the installed ones (someone may have chained after us).
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Any

from faultlens._recorder import flush, is_disabled, record_failure

_state: dict[str, Any] = {}
_lock = threading.Lock()

#: How long an excepthook waits for exporters before letting the process die.
flush_timeout_millis = 3_000


def _record_uncaught(exc: BaseException | None) -> None:
    if exc is None or isinstance(exc, KeyboardInterrupt) or is_disabled():
        return
    record_failure(exc, handled=False, source="excepthook", severity_floor="critical")
    flush(flush_timeout_millis)


def _sys_hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    try:
        _record_uncaught(exc)
    finally:
        previous = _state.get("sys") or sys.__excepthook__
        previous(exc_type, exc, tb)


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    try:
        if args.exc_type is not SystemExit:
            _record_uncaught(args.exc_value)
    finally:
        previous = _state.get("threading") or threading.__excepthook__
        previous(args)


def install_excepthooks() -> None:
    """Install the ``sys`` and ``threading`` hooks (idempotent)."""
    with _lock:
        if sys.excepthook is not _sys_hook:
            _state["sys"] = sys.excepthook
            sys.excepthook = _sys_hook
        if threading.excepthook is not _thread_hook:
            _state["threading"] = threading.excepthook
            threading.excepthook = _thread_hook


def uninstall_excepthooks() -> None:
    """Restore the hooks that were installed before :func:`install_excepthooks`."""
    with _lock:
        if sys.excepthook is _sys_hook:
            sys.excepthook = _state.pop("sys", None) or sys.__excepthook__
        if threading.excepthook is _thread_hook:
            threading.excepthook = _state.pop("threading", None) or threading.__excepthook__


def excepthooks_installed() -> bool:
    """True while faultlens' hooks are the installed ones."""
    return sys.excepthook is _sys_hook and threading.excepthook is _thread_hook
