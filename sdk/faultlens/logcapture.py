"""Record the failures an application swallows but logs.

``logger.exception(...)`` or ``logger.error(..., exc_info=True)`` in an
``except`` block is the signature of a *silent* failure: the program caught the
exception and went on. :class:`FailureLogHandler`, attached to the root logger
by :func:`install_logging_capture`, records every log record that carries an
exception as a handled failure with source ``logging`` and the place it was
logged (``code.function.name``, ``code.file.path``, ``code.line.number``).

Not covered: records of loggers with ``propagate = False`` (they never reach
the root logger) and records of the ``faultlens`` and ``opentelemetry`` loggers
(telemetry trouble must not feed itself). An exception already recorded (for
example by ``capture`` before it was caught and logged) is not recorded twice.
``FAULTLENS_CAPTURE_LOGGING=false`` makes installation a no-op.
"""

from __future__ import annotations

import logging
import threading

from faultlens.recorder import record_failure, runtime_settings

_lock = threading.Lock()


class FailureLogHandler(logging.Handler):
    """A logging handler that records exceptions attached to log records."""

    def __init__(self, ignored_loggers: tuple[str, ...] | None = None) -> None:
        super().__init__(level=logging.NOTSET)
        self._ignored = ignored_loggers

    def emit(self, record: logging.LogRecord) -> None:
        exc_info = record.exc_info
        if not exc_info or exc_info[1] is None:
            return
        ignored = self._ignored if self._ignored is not None else runtime_settings().ignored_loggers
        name = record.name
        if any(name == prefix or name.startswith(prefix + ".") for prefix in ignored):
            return
        record_failure(
            exc_info[1],
            handled=True,
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


_handler: list[FailureLogHandler] = []


def install_logging_capture(*, force: bool = False) -> bool:
    """Attach the handler to the root logger; returns True if it is attached.

    Honours ``FAULTLENS_CAPTURE_LOGGING`` unless ``force``; idempotent.
    """
    if not force and not runtime_settings().capture_logging:
        return False
    with _lock:
        if not _handler:
            handler = FailureLogHandler()
            logging.getLogger().addHandler(handler)
            _handler.append(handler)
    return True


def uninstall_logging_capture() -> None:
    """Detach the handler from the root logger."""
    with _lock:
        while _handler:
            logging.getLogger().removeHandler(_handler.pop())


def logging_capture_installed() -> bool:
    """True while the handler is attached."""
    return bool(_handler)
