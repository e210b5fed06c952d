"""Record the failures an application swallows but logs.

``logger.exception(...)`` or ``logger.error(..., exc_info=True)`` in an
``except`` block is the signature of a *silent* failure: the program caught the
exception and went on. :class:`FailureLogHandler`, attached to the root logger
by :func:`install_logging_capture`, records every log record that carries an
exception as a handled failure with source ``logging`` and the place it was
logged (``code.function.name``, ``code.file.path``, ``code.line.number``).

A record through which a web framework or server reports an exception that
reached *its own* error handler is different: the application did not catch
it, the request failed. Such a record — level ERROR or above, from a logger of
``Settings.boundary_loggers`` (``django.request``, ``uvicorn.error``,
``gunicorn.error``, …) or from Flask's or Quart's ``log_exception`` — is an
escaped failure, ``failure.handled=false``. Like any other, it counts once:
an exception the zero-code capture or a framework instrumentation recorded
first adds nothing.

Not covered: records of loggers with ``propagate = False`` (they never reach
the root logger) and records of the ``faultlens`` and ``opentelemetry`` loggers
(telemetry trouble must not feed itself). An exception already recorded (for
example by ``capture`` before it was caught and logged) is not recorded twice.
``FAULTLENS_CAPTURE_LOGGING=false`` makes installation a no-op.

While it is installed, ``logging.basicConfig``, ``logging.config.dictConfig``
and ``logging.config.fileConfig`` are wrapped so they run as if the handler were
not attached (``basicConfig`` configures the root logger instead of finding a
handler and doing nothing) and keep it attached afterwards; uninstalling
restores those functions exactly.

With ``last_resort=True`` (what the zero-code instrumentation installs) the
handler also leaves an unconfigured program's output alone: while it is the
only handler a record reaches, it passes the record on to
:data:`logging.lastResort`, as the logging module would with no handler at all.
By default it does not, so a program with no logging configuration of its own
prints no log records while the handler is attached.
"""

from __future__ import annotations

import logging
import logging.config
import os
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final

import wrapt

from faultlens._recorder import record_failure, runtime_settings

_lock = threading.Lock()


class FailureLogHandler(logging.Handler):
    """A logging handler that records exceptions attached to log records."""

    def __init__(
        self, ignored_loggers: tuple[str, ...] | None = None, *, last_resort: bool = False
    ) -> None:
        super().__init__(level=logging.NOTSET)
        self._ignored = ignored_loggers
        self.last_resort = last_resort

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._record(record)
        finally:
            if self.last_resort and not _reaches_other_handler(self, record):
                last = logging.lastResort
                if last is not None and record.levelno >= last.level:
                    last.handle(record)

    def _record(self, record: logging.LogRecord) -> None:
        exc_info = record.exc_info
        if not exc_info or exc_info[1] is None:
            return
        ignored = self._ignored if self._ignored is not None else runtime_settings().ignored_loggers
        name = record.name
        if _under(name, ignored):
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

    def handleError(self, record: logging.LogRecord) -> None:
        # record_failure never raises; nothing of ours should print to stderr.
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


def _reaches_other_handler(handler: logging.Handler, record: logging.LogRecord) -> bool:
    """True if a handler other than ``handler`` sees ``record`` on its way to the root."""
    root = logging.getLogger()
    if any(other is not handler for other in root.handlers):
        return True
    logger = logging.Logger.manager.loggerDict.get(record.name)
    while isinstance(logger, logging.Logger) and logger is not root:
        if logger.handlers or not logger.propagate:
            return True
        logger = logger.parent
    return False


_handler: list[FailureLogHandler] = []
#: (namespace, name, original, wrapper) of the logging configuration functions wrapped.
_config_patches: list[tuple[ModuleType, str, Callable[..., Any], Callable[..., Any]]] = []


def _configure_without_handler(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run a logging configuration function as if the capture handler were not attached."""
    root = logging.getLogger()
    ours = [handler for handler in list(root.handlers) if handler in _handler]
    for handler in ours:
        root.removeHandler(handler)
    try:
        return wrapped(*args, **kwargs)
    finally:
        for handler in ours:
            if handler in _handler:
                root.addHandler(handler)


def _wrap_config_functions() -> None:
    for module, name in (
        (logging, "basicConfig"),
        (logging.config, "dictConfig"),
        (logging.config, "fileConfig"),
    ):
        original = getattr(module, name)
        wrapper = wrapt.FunctionWrapper(original, _configure_without_handler)
        setattr(module, name, wrapper)
        _config_patches.append((module, name, original, wrapper))


def _restore_config_functions() -> None:
    while _config_patches:
        module, name, original, wrapper = _config_patches.pop()
        if getattr(module, name, None) is wrapper:  # someone wrapped it after us: leave it
            setattr(module, name, original)


def install_logging_capture(*, force: bool = False, last_resort: bool = False) -> bool:
    """Attach the handler to the root logger; returns True if it is attached.

    Honours ``FAULTLENS_CAPTURE_LOGGING`` unless ``force``; idempotent (a handler
    already attached stays as it is). ``last_resort``: see the module docstring.
    """
    if not force and not runtime_settings().capture_logging:
        return False
    with _lock:
        if not _handler:
            handler = FailureLogHandler(last_resort=last_resort)
            _handler.append(handler)
            logging.getLogger().addHandler(handler)
            _wrap_config_functions()
    return True


def uninstall_logging_capture() -> None:
    """Detach the handler from the root logger; restore the configuration functions."""
    with _lock:
        _restore_config_functions()
        while _handler:
            logging.getLogger().removeHandler(_handler.pop())


def logging_capture_installed() -> bool:
    """True while the handler is attached."""
    return bool(_handler)
