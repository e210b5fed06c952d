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

The names below are the public API; the modules behind them (``faultlens._recorder``,
``faultlens._capture``, …) are not. ``import faultlens`` itself loads none of them: each
loads when a name that needs it is first used (:mod:`faultlens._lazy`). Public modules:
:mod:`faultlens.semconv` (the names on the wire), :mod:`faultlens.resilience`,
:mod:`faultlens.instrumentation` (the ``opentelemetry-instrument`` entry point) and
:mod:`faultlens.shared` (for the faultlens processor, not for applications).

See the README and ``docs/`` (docs/sdk.md, "The public API") for the wire format,
configuration and the zero-code instrumentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faultlens._version import __version__

if TYPE_CHECKING:
    from faultlens import semconv as semconv
    from faultlens._asyncio_hook import install_asyncio_hook, uninstall_asyncio_hook
    from faultlens._capture import Capture, capture
    from faultlens._classify import Classification
    from faultlens._config import Settings
    from faultlens._excepthooks import install_excepthooks, uninstall_excepthooks
    from faultlens._logcapture import (
        FailureLogHandler,
        install_logging_capture,
        uninstall_logging_capture,
    )
    from faultlens._recorder import configure, flush, record_failure
    from faultlens._redact import REDACTED
    from faultlens._setup import add_redaction, classify, install, register_rule, uninstall
    from faultlens._shutdown import install_signal_flush, uninstall_signal_flush
    from faultlens._spanhook import install_span_hook, uninstall_span_hook
    from faultlens._testing import reset as reset
    from faultlens._testing import set_testing
    from faultlens.semconv import CATEGORIES, SEVERITIES
else:
    from faultlens._lazy import exports

    __getattr__, __dir__ = exports(
        __name__,
        {
            "faultlens.semconv": ("semconv", "CATEGORIES", "SEVERITIES"),
            "faultlens._asyncio_hook": ("install_asyncio_hook", "uninstall_asyncio_hook"),
            "faultlens._capture": ("Capture", "capture"),
            "faultlens._classify": ("Classification",),
            "faultlens._config": ("Settings",),
            "faultlens._excepthooks": ("install_excepthooks", "uninstall_excepthooks"),
            "faultlens._logcapture": (
                "FailureLogHandler",
                "install_logging_capture",
                "uninstall_logging_capture",
            ),
            "faultlens._recorder": ("configure", "flush", "record_failure"),
            "faultlens._redact": ("REDACTED",),
            "faultlens._setup": (
                "add_redaction",
                "classify",
                "install",
                "register_rule",
                "uninstall",
            ),
            "faultlens._shutdown": ("install_signal_flush", "uninstall_signal_flush"),
            "faultlens._spanhook": ("install_span_hook", "uninstall_span_hook"),
            "faultlens._testing": ("reset", "set_testing"),
        },
    )
    del exports

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
    "set_testing",
    "uninstall",
    "uninstall_asyncio_hook",
    "uninstall_excepthooks",
    "uninstall_logging_capture",
    "uninstall_signal_flush",
    "uninstall_span_hook",
]
