"""Record the failures an application swallows but logs.

``logger.exception(...)`` or ``logger.error(..., exc_info=True)`` in an
``except`` block is the signature of a *silent* failure: the program caught the
exception and went on. :func:`install_logging_capture` puts a *log record
factory* (:func:`logging.setLogRecordFactory`) in front of the one in place,
which sees every record a logger creates: one that carries an exception is
recorded as a handled failure with source ``logging`` and the place it was
logged (``code.function.name``, ``code.file.path``, ``code.line.number``), and
the record goes on exactly as before.

Nothing of the program's logging changes: no handler is added to any logger
(``logging.getLogger().handlers`` stays as the program set it, so
``logging.basicConfig`` configures the root logger as usual and an unconfigured
program prints through :data:`logging.lastResort` as without faultlens),
nothing is wrapped, and no faultlens frame is on the stack while handlers,
filters or formatters run (the factory returns before them; the caller's place
is computed by ``findCaller`` before the factory runs). A factory the program
installs later and that chains to the one it found (the documented pattern)
keeps the capture; one that does not chain replaces it.

A record through which a web framework or server reports an exception that
reached *its own* error handler is different: the application did not catch
it, the request failed. Such a record — level ERROR or above, from a logger of
``Settings.boundary_loggers`` (``django.request``, ``uvicorn.error``,
``gunicorn.error``, …) or from Flask's or Quart's ``log_exception`` — is an
escaped failure, ``failure.handled=false``. Like any other, it counts once:
an exception the zero-code capture or a framework instrumentation recorded
first adds nothing.

Covered: every record a ``logging.Logger`` creates (``Logger.makeRecord``), also
on loggers with ``propagate = False``, with no handler, or disabled. Not covered:
records of the ``faultlens`` and ``opentelemetry`` loggers (telemetry trouble
must not feed itself), records built without the factory
(``logging.makeLogRecord``, a ``Logger`` subclass whose ``makeRecord`` builds
``LogRecord`` itself). An exception already recorded (for example by
``capture`` before it was caught and logged) is not recorded twice.
``FAULTLENS_CAPTURE_LOGGING=false`` makes installation a no-op.

:class:`FailureLogHandler` records the same way from a handler, for programs
that prefer to attach it themselves to the loggers they choose.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from faultlens._internal_errors import report_internal_error
from faultlens._recorder import record_failure, runtime_settings

_lock = threading.Lock()


def observe(record: logging.LogRecord, ignored: tuple[str, ...] | None = None) -> None:
    """Record the exception ``record`` carries, if any (never raises).

    ``ignored``: logger-name prefixes left out (default: the ``ignored_loggers``
    setting, ``faultlens`` and ``opentelemetry``).
    """
    exc_info = record.exc_info
    if not exc_info or exc_info[1] is None:
        return
    try:
        if ignored is None:
            ignored = runtime_settings().ignored_loggers
        if _under(record.name, ignored):
            return
        record_failure(
            exc_info[1],
            handled=not _reports_an_escape(record),
            source="logging",
            attributes={
                "code.function.name": record.funcName or "",
                "code.file.path": record.pathname or "",
                "code.line.number": record.lineno,
            },
        )
    except Exception:  # the program's logging call must go on whatever happens here
        report_internal_error("logging capture")


class FailureLogHandler(logging.Handler):
    """A logging handler that records exceptions attached to log records.

    :func:`install_logging_capture` needs no handler; this one is for programs
    that attach it themselves. Records it sees are recorded as by the capture
    (an exception both see counts once).
    """

    def __init__(self, ignored_loggers: tuple[str, ...] | None = None) -> None:
        super().__init__(level=logging.NOTSET)
        self._ignored = ignored_loggers

    def emit(self, record: logging.LogRecord) -> None:
        observe(record, self._ignored)

    def handleError(self, record: logging.LogRecord) -> None:
        # observe never raises; nothing of ours should print to stderr.
        return


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


#: ``(package directory, file)`` of the methods web frameworks log unhandled exceptions in
#: under the application's own logger name (Flask's and Quart's ``app.logger``).
_LOG_EXCEPTION_SITES: Final = (("flask", "app.py"), ("quart", "app.py"))


def _reports_an_escape(record: logging.LogRecord) -> bool:
    """Whether ``record`` is a framework's report of an exception its error handler got."""
    if record.levelno < logging.ERROR:
        return False
    if _under(record.name, runtime_settings().boundary_loggers):
        return True
    if record.funcName != "log_exception":
        return False
    parts = os.path.normpath(record.pathname or "").split(os.sep)
    return tuple(parts[-2:]) in _LOG_EXCEPTION_SITES


@dataclass(eq=False)
class _Installed:
    """One installation: the factory put in place and the one it chains to."""

    factory: Callable[..., logging.LogRecord]
    previous: Callable[..., logging.LogRecord]
    active: bool = True


_installed: list[_Installed] = []


def _make_factory(previous: Callable[..., logging.LogRecord]) -> _Installed:
    def faultlens_log_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.exc_info and installed.active:
            observe(record)
        return record

    installed = _Installed(faultlens_log_record_factory, previous)
    return installed


def install_logging_capture(*, force: bool = False) -> bool:
    """Put the capturing log record factory in place; returns True if it is.

    Honours ``FAULTLENS_CAPTURE_LOGGING`` unless ``force``; idempotent.
    """
    if not force and not runtime_settings().capture_logging:
        return False
    with _lock:
        if not _installed:
            installed = _make_factory(logging.getLogRecordFactory())
            logging.setLogRecordFactory(installed.factory)
            _installed.append(installed)
    return True


def uninstall_logging_capture() -> None:
    """Stop capturing: the previous factory is back in place.

    When the program installed a factory of its own after faultlens' and chained
    to it, faultlens' stays in that chain as a pass-through that records nothing.
    """
    with _lock:
        while _installed:
            installed = _installed.pop()
            installed.active = False
            if logging.getLogRecordFactory() is installed.factory:
                logging.setLogRecordFactory(installed.previous)


def logging_capture_installed() -> bool:
    """True while log records are captured."""
    return bool(_installed)
