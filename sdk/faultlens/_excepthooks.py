"""Record uncaught exceptions without replacing ``sys.excepthook``.

An exception that ends the main thread or a :class:`threading.Thread` is
recorded as an escaped failure (source ``excepthook``, severity at least
``critical``, ``failure.handled=false``), and faultlens and the OpenTelemetry
providers are flushed (bounded by :data:`flush_timeout_millis`) so the failure
leaves the process even when the span processor would hold it for seconds. An
exception recorded already (by the ``sys.monitoring`` engine following it out of
watched code, by a ``@faultlens.capture``…) counts once: it is not recorded
again, the flush still happens. ``KeyboardInterrupt`` and ``SystemExit`` are not
failures.

What a program can notice (the rule: nothing):

**Main thread, every Python version.** ``sys.excepthook`` is left alone:
``sys.excepthook is sys.__excepthook__`` stays True (the ``exceptiongroup``
backport, trio and IPython-style code test exactly this), a hook the program
installs, before or after faultlens, runs as it would and finds no faultlens
frame on its stack or in the traceback, and the traceback on stderr and the exit
status are unchanged. When an uncaught exception ends the main thread,
CPython's ``PyErr_Print`` stores it in ``sys.last_exc`` (3.12+) and
``sys.last_value`` before it calls ``sys.excepthook``; finalization then runs
``threading._shutdown()``, which calls the callbacks registered with
``threading._register_atexit`` (private, stable since 3.9, what
``concurrent.futures`` uses), and only after that the ``atexit`` handlers, among
them the OpenTelemetry SDK providers' shutdown. faultlens registers one such
callback at the first install (``atexit`` if ``threading._register_atexit`` is
missing or refuses): it records the exception found there and flushes, while the
providers are still up, whatever order the program created them and installed
faultlens in. It takes the exception only if its traceback starts at the bottom
frame of the thread (the exception unwound everything: ``python app.py``,
``python -m``, ``-c``, console scripts, ``opentelemetry-instrument``), so an
embedded console (``code.interact``), which also sets ``sys.last_value``, and
an exception a program stored there itself are not mistaken for it.

**Threads, Python 3.12+.** ``threading.excepthook`` is left alone too. The
``sys.monitoring`` engine (:mod:`faultlens._monitoring`, the process's one tool
id) watches the calls of ``threading.Thread._bootstrap_inner`` — a *local*
``CALL`` event on that one code object, no global event — and when that code
calls the thread's ``_invoke_excepthook`` (its ``except:`` around ``run()``),
records the exception being handled and flushes, before the program's
``threading.excepthook`` runs. Every other call site of that code is switched
off after its first call (``sys.monitoring.DISABLE``): threads that do not fail
cost nothing. When every tool id faultlens may use is held by other tools, the
3.10/3.11 way is used.

**Threads, Python 3.10/3.11.** Without ``sys.monitoring`` there is no invisible
way: ``threading.excepthook`` is replaced by a hook that records, flushes and
calls the hook it replaced. A program can notice it (``threading.excepthook is
threading.__excepthook__`` is False; a hook set before install sees one
faultlens frame below it; one set after install replaces faultlens' and thread
failures go unrecorded), which cannot be fixed there.

Edge cases: a ``sys.excepthook`` that ends the process itself (``os._exit``)
skips the recording of a main-thread exception, as it skips every exit handler.
Interactive sessions (``python -i``, the REPL: ``sys.ps1`` set or
``sys.flags.interactive``) are skipped, since the REPL stores every error it
prints in ``sys.last_value``. A program killed by a signal runs no exit handler
(:mod:`faultlens._shutdown` covers SIGTERM/SIGHUP).

:func:`install_excepthooks` is idempotent; :func:`uninstall_excepthooks` makes the
main-thread callback do nothing (it cannot be unregistered), stops watching
``_bootstrap_inner`` (the engine frees the tool id if nothing else uses it) and,
on 3.10/3.11, restores the previous ``threading.excepthook`` only if faultlens'
hook is still the installed one (someone may have chained after it).
"""

from __future__ import annotations

import atexit
import sys
import threading
from types import CodeType, FunctionType
from typing import Any, Final

from faultlens import _monitoring as monitoring
from faultlens._recorder import flush, is_disabled, record_failure

#: How long the capture of an uncaught exception waits for exporters.
flush_timeout_millis = 3_000

_NOT_FAILURES: Final = (KeyboardInterrupt, SystemExit)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: the main-thread callback records (install) or does nothing (uninstall)
        self.enabled = False
        self.registered = False
        #: the ``threading.excepthook`` that faultlens' chaining hook replaced
        self.previous_thread_hook: Any = None
        #: 3.12+: what sees ``Thread._bootstrap_inner`` hand an exception to the hook
        self.watcher: _ThreadWatcher | None = None


_state = _State()


def _record_uncaught(exc: BaseException | None) -> None:
    if exc is None or isinstance(exc, _NOT_FAILURES) or is_disabled():
        return
    record_failure(exc, handled=False, source="excepthook", severity_floor="critical")
    flush(flush_timeout_millis)


# -- the main thread -----------------------------------------------------------


def _interactive() -> bool:
    return hasattr(sys, "ps1") or bool(sys.flags.interactive)


def _ended_its_thread(exc: BaseException) -> bool:
    """True when ``exc`` unwound the bottom frame of its thread."""
    tb = exc.__traceback__
    return tb is not None and tb.tb_frame.f_back is None


def _at_thread_shutdown() -> None:
    """Record the exception that ended the main thread, if one did."""
    if not _state.enabled or _interactive():
        return
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if isinstance(exc, BaseException) and _ended_its_thread(exc):
        _record_uncaught(exc)


def _register_at_thread_shutdown() -> None:
    """Run :func:`_at_thread_shutdown` before the ``atexit`` handlers (once)."""
    if _state.registered:
        return
    _state.registered = True
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("threading._register_atexit is missing")
        register(_at_thread_shutdown)
    except Exception:  # missing, or the interpreter is shutting down already
        atexit.register(_at_thread_shutdown)


# -- threads: Python 3.12+ (sys.monitoring) --------------------------------------


def _invoke_excepthook_code() -> CodeType | None:
    """The code of the ``invoke_excepthook`` function every thread calls for an exception
    escaping ``run()`` (made by ``threading._make_invoke_excepthook``)."""
    make = getattr(threading, "_make_invoke_excepthook", None)
    for const in getattr(getattr(make, "__code__", None), "co_consts", ()):
        if isinstance(const, CodeType) and const.co_name == "invoke_excepthook":
            return const
    return None


class _ThreadWatcher:
    """Sees ``Thread._bootstrap_inner`` call ``_invoke_excepthook``: ``run()`` raised."""

    def __init__(self, code: CodeType, invoke: CodeType) -> None:
        self.monitor: monitoring.Monitor | None = None
        self.code = code
        self.invoke = invoke

    def on_call(self, code: CodeType, called: object) -> bool:
        # type() first: never run a property or __getattr__ of what the program calls
        if type(called) is not FunctionType or called.__code__ is not self.invoke:
            return False
        _record_uncaught(sys.exception())  # type: ignore[attr-defined,unused-ignore]
        return True

    @property
    def active(self) -> bool:
        return self.monitor is not None and self.monitor.watches_calls(self.code, self)


def _watch_threads() -> bool:
    """Watch ``_bootstrap_inner`` with the engine; False when it cannot (before 3.12, no
    free tool id, a ``threading`` without the expected code)."""
    if _state.watcher is not None and _state.watcher.active:
        return True
    if not monitoring.supported():
        return False
    code = getattr(getattr(threading.Thread, "_bootstrap_inner", None), "__code__", None)
    invoke = _invoke_excepthook_code()
    if not isinstance(code, CodeType) or invoke is None:
        return False
    watcher = _ThreadWatcher(code, invoke)
    watcher.monitor = monitoring.watch_calls(code, watcher)
    if watcher.monitor is None:
        return False
    _state.watcher = watcher
    return True


def _unwatch_threads() -> None:
    watcher, _state.watcher = _state.watcher, None
    if watcher is not None and watcher.monitor is not None:
        watcher.monitor.unwatch_calls(watcher.code, watcher)


# -- threads: Python 3.10/3.11 (a chained threading.excepthook) ------------------


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    try:
        _record_uncaught(args.exc_value)
    finally:
        previous = _state.previous_thread_hook or threading.__excepthook__
        previous(args)


def _threads_watched() -> bool:
    watcher = _state.watcher
    return threading.excepthook is _thread_hook or (watcher is not None and watcher.active)


# -- public ----------------------------------------------------------------------


def install_excepthooks() -> None:
    """Capture uncaught exceptions of the main thread and of threads (idempotent)."""
    with _state.lock:
        _state.enabled = True
        _register_at_thread_shutdown()
        if _threads_watched() or _watch_threads():
            return
        _state.previous_thread_hook = threading.excepthook
        threading.excepthook = _thread_hook


def uninstall_excepthooks() -> None:
    """Stop capturing uncaught exceptions; a replaced ``threading.excepthook`` is put back."""
    with _state.lock:
        _state.enabled = False
        _unwatch_threads()
        if threading.excepthook is _thread_hook:
            threading.excepthook = _state.previous_thread_hook or threading.__excepthook__
            _state.previous_thread_hook = None


def excepthooks_installed() -> bool:
    """True while uncaught exceptions of the main thread and of threads are captured."""
    return _state.enabled and _threads_watched()
