"""The process-wide set-up of the public API: rules, redaction patterns, the hooks.

Thin functions over the recorder's classifier and redactor and over the out-of-band
hooks, re-exported by :mod:`faultlens`.
"""

from __future__ import annotations

import re

from faultlens._asyncio_hook import install_asyncio_hook, uninstall_asyncio_hook
from faultlens._classify import Classification, Predicate
from faultlens._excepthooks import install_excepthooks, uninstall_excepthooks
from faultlens._logcapture import install_logging_capture, uninstall_logging_capture
from faultlens._recorder import classifier as _classifier
from faultlens._recorder import is_disabled
from faultlens._recorder import redactor as _redactor
from faultlens._redact import REDACTED
from faultlens._shutdown import install_signal_flush, uninstall_signal_flush
from faultlens._spanhook import install_span_hook, uninstall_span_hook

__all__ = ["add_redaction", "classify", "install", "register_rule", "uninstall"]


def register_rule(
    match: type[BaseException] | tuple[type[BaseException], ...] | Predicate,
    *,
    category: str | None = None,
    severity: str | None = None,
) -> None:
    """Classify matching exceptions with ``category`` and/or ``severity``.

    ``match`` is an exception type (subclasses included), a tuple of types or a
    predicate ``(exc) -> bool``. User rules win over the defaults; among user
    rules the most recently registered wins. Raises ``ValueError`` for an
    unknown severity or a malformed category name.
    """
    _classifier().register(match, category=category, severity=severity)


def classify(exc: BaseException, *, handled: bool = True) -> Classification:
    """Category and severity faultlens would give ``exc`` (without recording it)."""
    return _classifier().classify(exc, floor="low" if handled else "medium")


def add_redaction(pattern: str | re.Pattern[str], replacement: str = REDACTED) -> None:
    """Redact every match of ``pattern`` in failure messages and stack traces.

    ``replacement`` may use back-references to keep part of the match. Raises
    ``re.error`` (a ``ValueError``) for an invalid pattern.
    """
    _redactor().add(pattern, replacement)


def install(*, logging_capture: bool = True) -> None:
    """Install every out-of-band hook: uncaught-exception capture (which replaces no
    ``sys.excepthook``, :mod:`faultlens._excepthooks`), the asyncio hook, logging capture, and
    the span hook that makes ``Span.record_exception`` calls of other instrumentations
    count an exception once (:mod:`faultlens._spanhook`), and the flush before a
    SIGTERM/SIGHUP that would kill the process without exit handlers
    (:mod:`faultlens._shutdown`; main thread only).

    Logging capture honours ``FAULTLENS_CAPTURE_LOGGING``. Nothing is installed
    while faultlens is disabled.
    """
    if is_disabled():
        return
    install_excepthooks()
    install_asyncio_hook()
    install_span_hook()
    install_signal_flush()
    if logging_capture:
        install_logging_capture()


def uninstall() -> None:
    """Remove every hook :func:`install` put in place."""
    uninstall_logging_capture()
    uninstall_span_hook()
    uninstall_signal_flush()
    uninstall_asyncio_hook()
    uninstall_excepthooks()
