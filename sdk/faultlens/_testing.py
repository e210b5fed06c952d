"""Testing mode for the recorder: :func:`set_testing`, stamina-style.

The recorder is process-wide state — settings, classification rules, redaction
patterns, the providers it emits to, the exceptions it remembers — so a test suite
needs every test to start from the same state and to leave none behind.
:func:`set_testing` does both without a test hook in any public signature.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from opentelemetry._logs import LoggerProvider
from opentelemetry.trace import TracerProvider

from faultlens import _recorder
from faultlens._classify import Classifier
from faultlens._config import Settings
from faultlens._recorder import FingerprintCallback
from faultlens._redact import Redactor
from faultlens._restoring import Restoring

__all__ = ["reset", "set_testing"]


@dataclass(frozen=True)
class _Configuration:
    """What :func:`set_testing` puts back: what an application configured."""

    settings: Settings
    classifier: Classifier
    redactor: Redactor
    fingerprint_callback: FingerprintCallback | None
    tracer_provider: TracerProvider | None
    logger_provider: LoggerProvider | None


def _current() -> _Configuration:
    runtime = _recorder._runtime
    with runtime.lock:
        return _Configuration(
            runtime.settings,
            runtime.classifier,
            runtime.redactor,
            runtime.fingerprint_callback,
            runtime.tracer_provider,
            runtime.logger_provider,
        )


def _fresh() -> None:
    """The recorder as at start-up: settings from the environment, no rules, patterns,
    callback or providers, nothing remembered. The configuration objects in force are
    replaced, not cleared, so that leaving :func:`set_testing` can put them back."""
    runtime = _recorder._runtime
    with runtime.lock:
        runtime.classifier = Classifier()
    _recorder.reset()


def _put_back(previous: _Configuration) -> None:
    """The configuration ``previous`` in force again, and nothing recorded remembered."""
    _fresh()
    runtime = _recorder._runtime
    with runtime.lock:
        runtime.classifier = previous.classifier
        runtime.redactor = previous.redactor
        runtime.fingerprint_callback = previous.fingerprint_callback
        runtime.tracer_provider = previous.tracer_provider
        runtime.logger_provider = previous.logger_provider
        runtime.apply(previous.settings)


def set_testing(
    *,
    tracer_provider: TracerProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    fingerprint_callback: FingerprintCallback | None = None,
    **overrides: Any,
) -> Restoring:
    """Put the recorder in a known state for a test, at once.

    The state is the one a process starts with — settings from the environment, no
    registered rules, no redaction patterns but the built-in ones, no fingerprint
    callback, nothing remembered (recorded exceptions, storm counts, internal errors
    already reported) — with the arguments of :func:`faultlens.configure` applied:
    ``tracer_provider`` / ``logger_provider`` to receive faultlens' emissions (an
    in-memory exporter's provider), ``fingerprint_callback`` and setting
    ``overrides`` (``disabled``, ``signal``, ``storm_burst``, …; unknown names raise
    ``TypeError``). Hooks stay as they are (:func:`faultlens.uninstall` removes them).

    Use it as a context manager to get the previous configuration back when the block
    ends (stamina's pattern)::

        with faultlens.set_testing(tracer_provider=provider):
            ...

    or call it alone to keep the state until the next call. Not meant to run
    concurrently with itself.
    """
    previous = _current()
    _fresh()
    try:
        _recorder.configure(
            tracer_provider=tracer_provider,
            logger_provider=logger_provider,
            fingerprint_callback=fingerprint_callback,
            **overrides,
        )
    except BaseException:
        _put_back(previous)  # a bad override changes nothing
        raise
    return Restoring(lambda: _put_back(previous))


def reset() -> None:
    """Deprecated: use :func:`set_testing` in tests, or ``configure(reload_env=True)`` to
    re-read the environment. Restores the settings from the environment and forgets
    rules, patterns, providers and state."""
    warnings.warn(
        "faultlens.reset() is deprecated: use faultlens.set_testing() in tests "
        "(a context manager), or faultlens.configure(reload_env=True)",
        DeprecationWarning,
        stacklevel=2,
    )
    _recorder.reset()
