"""faultlens: failures you cannot miss, on OpenTelemetry.

Capture failures in-process and emit them as OpenTelemetry ``exception`` span
events (or log records) carrying a category, a severity and a stable
fingerprint::

    import faultlens

    @faultlens.capture
    def charge(order): ...

    try:
        sync_inventory()
    except InventoryError as exc:
        faultlens.record_failure(exc)       # a handled, *silent* failure
        use_cached_inventory()

See the README and ``docs/`` for the wire format, configuration and the
zero-code instrumentation.
"""

from __future__ import annotations

import re

from faultlens._asyncio_hook import install_asyncio_hook, uninstall_asyncio_hook
from faultlens._capture import Capture, capture
from faultlens._classify import Classification, Predicate
from faultlens._config import Settings
from faultlens._excepthooks import install_excepthooks, uninstall_excepthooks
from faultlens._logcapture import (
    FailureLogHandler,
    install_logging_capture,
    uninstall_logging_capture,
)
from faultlens._recorder import classifier as _classifier
from faultlens._recorder import configure, flush, record_failure, reset
from faultlens._recorder import redactor as _redactor
from faultlens._redact import REDACTED
from faultlens._shutdown import install_signal_flush, uninstall_signal_flush
from faultlens._spanhook import install_span_hook, uninstall_span_hook
from faultlens._version import __version__
from faultlens.semconv import CATEGORIES, SEVERITIES

__all__ = [
    "CATEGORIES",
    "REDACTED",
    "SEVERITIES",
    "Capture",
    "Classification",
    "FailureLogHandler",
    "Settings",
    "__version__",
    "add_redaction",
    "capture",
    "classify",
    "configure",
    "flush",
    "install",
    "install_asyncio_hook",
    "install_excepthooks",
    "install_logging_capture",
    "install_signal_flush",
    "install_span_hook",
    "record_failure",
    "register_rule",
    "reset",
    "uninstall",
    "uninstall_asyncio_hook",
    "uninstall_excepthooks",
    "uninstall_logging_capture",
    "uninstall_signal_flush",
    "uninstall_span_hook",
]


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
    """Install every out-of-band hook: excepthooks, the asyncio hook, logging capture, and
    the span hook that makes ``Span.record_exception`` calls of other instrumentations
    count an exception once (:mod:`faultlens.spanhook`), and the flush before a
    SIGTERM/SIGHUP that would kill the process without exit handlers
    (:mod:`faultlens.shutdown`; main thread only).

    Logging capture honours ``FAULTLENS_CAPTURE_LOGGING``. Nothing is installed
    while faultlens is disabled.
    """
    from faultlens._recorder import is_disabled

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
