"""Nothing recorded before a SIGTERM is lost: flush, then die by the same signal.

A normal exit runs exit handlers, and the OpenTelemetry SDK's (its providers
shut down at exit) export what is still queued. A process killed by a signal
whose disposition is the default one dies at once, without exit handlers: a
plain ``python app.py`` sent SIGTERM by an orchestrator, or uvicorn, which on
SIGTERM shuts down, puts back the handler it found and raises the signal
again. Whatever the batch span processor still held — the last seconds of
failures — was lost.

:func:`install_signal_flush` installs, **only for signals whose handler is
still the default** (``SIGTERM`` and ``SIGHUP``: the ones whose default kills
without exit handlers and that servers and orchestrators send), a handler that

1. flushes faultlens (pending storm aggregates) and the tracer and logger
   providers, on a helper thread, waiting at most :data:`flush_timeout_seconds`
   (the interrupted main thread may hold a lock the exporters need: a flush that
   hangs is abandoned, never waited for);
2. puts the default disposition back and raises the signal again, so the process
   dies by that signal, with the exit status it would have had without
   faultlens (``-15`` / ``143`` for SIGTERM). It never swallows the signal.

A program or server that installs its own handler replaces this one and keeps
its own shutdown (gunicorn's workers exit normally and run exit handlers; a
handler that calls ``sys.exit`` does too); uvicorn puts this one back when it
re-raises the signal after its shutdown, and the flush then happens. What a
program sees: ``signal.getsignal(SIGTERM)`` returns faultlens' handler instead
of ``SIG_DFL`` while installed; the signal is handled by the main thread between
two bytecodes, as every Python-level handler is, rather than by the kernel at
once. Installing from a thread other than the main thread does nothing.
``uninstall_signal_flush`` puts ``SIG_DFL`` back where faultlens' handler is
still installed.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Final

from faultlens._internal_errors import report_internal_error
from faultlens._recorder import flush

#: The signals whose default action ends the process without exit handlers.
SIGNALS: Final = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: How long a dying process waits for its telemetry to leave.
flush_timeout_seconds = 3.0

_lock = threading.Lock()
_installed: set[int] = set()


def _flush_then_die(signum: int, frame: FrameType | None) -> None:
    try:
        helper = threading.Thread(
            target=flush,
            args=(int(flush_timeout_seconds * 1000),),
            name="faultlens-signal-flush",
            daemon=True,
        )
        helper.start()
        helper.join(flush_timeout_seconds + 0.5)
    except Exception:
        report_internal_error("signal flush")
    finally:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def install_signal_flush() -> bool:
    """Install the flushing handler for each of :data:`SIGNALS` still at its default.

    Returns True if it is installed for at least one signal. Idempotent; does
    nothing (False) outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    with _lock:
        for signum in SIGNALS:
            try:
                current = signal.getsignal(signum)
                if current is signal.SIG_DFL:
                    signal.signal(signum, _flush_then_die)
                    _installed.add(signum)
            except (OSError, ValueError):  # not settable here
                continue
        return bool(_installed)


def uninstall_signal_flush() -> None:
    """Put the default handler back where faultlens' handler is still the installed one."""
    if threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        for signum in list(_installed):
            if signal.getsignal(signum) is _flush_then_die:
                signal.signal(signum, signal.SIG_DFL)
            _installed.discard(signum)


def signal_flush_installed() -> bool:
    """True while faultlens' handler is installed for at least one signal."""
    return any(signal.getsignal(signum) is _flush_then_die for signum in _installed)
