"""Settings of the in-process SDK, read from the environment and from code.

Environment variables (read when :func:`settings_from_env` runs, i.e. at
import and on :func:`faultlens.configure` with ``reload_env=True``):

=======================================  ========  ========================================
variable                                 default   meaning
=======================================  ========  ========================================
``FAULTLENS_DISABLED``                   false     every wrapper and hook passes through
``FAULTLENS_CAPTURE_LOGGING``            true      record log records with exception info
``FAULTLENS_REDACT``                     true      redact secrets in messages and traces
``FAULTLENS_STORM_BURST``                10        full recordings per fingerprint at first
``FAULTLENS_STORM_REFILL_SECONDS``       10        one more full recording every N seconds
``FAULTLENS_STORM_INTERVAL_SECONDS``     1         at most one aggregate per fingerprint / N s
``FAULTLENS_MAX_FINGERPRINTS``           20000     fingerprints whose storm state is kept
``FAULTLENS_IN_APP``                     (empty)   module prefixes always counted in-app
``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN``  (unset)  ``logs``: log records; ``logs/dup``: both
=======================================  ========  ========================================

A malformed value is reported once through the ``faultlens`` logger and the
default is used: configuration trouble never stops the application.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

_log = logging.getLogger("faultlens")

SignalMode = Literal["span", "logs", "logs/dup"]

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})

DEFAULT_IGNORED_LOGGERS: Final = ("faultlens", "opentelemetry")
#: Loggers through which web frameworks and servers report an exception that reached their
#: own error handler — the request failed (docs/instrumentation.md, "What each layer records").
DEFAULT_BOUNDARY_LOGGERS: Final = (
    "django.request",
    "uvicorn.error",
    "gunicorn.error",
    "hypercorn.error",
    "tornado.application",
    "aiohttp.server",
    "aiohttp.web",
    "sanic.error",
    "waitress",
    "celery.app.trace",
)


@dataclass(frozen=True)
class Settings:
    """Everything that tunes the recorder. Immutable: replace, don't mutate."""

    disabled: bool = False
    capture_logging: bool = True
    redact: bool = True
    signal: SignalMode = "span"
    storm_burst: int = 10
    storm_refill_seconds: float = 10.0
    storm_interval_seconds: float = 1.0
    max_fingerprints: int = 20_000
    max_message_chars: int = 8_192
    max_stacktrace_chars: int = 32_768
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    ignored_loggers: tuple[str, ...] = field(default=DEFAULT_IGNORED_LOGGERS)
    boundary_loggers: tuple[str, ...] = field(default=DEFAULT_BOUNDARY_LOGGERS)


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    """Parse a boolean environment value; warn and fall back to ``default`` if malformed."""
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return default if value == "" else False
    _log.warning("faultlens: %s=%r is not a boolean (true/false); using %s", name, raw, default)
    return default


def parse_number(name: str, raw: str | None, default: float, *, minimum: float) -> float:
    """Parse a number >= ``minimum``; warn once and fall back to ``default`` if malformed."""
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        _log.warning(
            "faultlens: %s=%r must be a number >= %s; using %s", name, raw, minimum, default
        )
        return default
    return value


def parse_signal_mode(raw: str | None) -> SignalMode:
    """Interpret ``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN`` (comma-separated tokens)."""
    if not raw:
        return "span"
    tokens = {token.strip().lower() for token in raw.split(",")}
    if "logs/dup" in tokens:
        return "logs/dup"
    if "logs" in tokens:
        return "logs"
    return "span"


def _split(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from environment variables (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    return Settings(
        disabled=parse_bool("FAULTLENS_DISABLED", env.get("FAULTLENS_DISABLED"), False),
        capture_logging=parse_bool(
            "FAULTLENS_CAPTURE_LOGGING", env.get("FAULTLENS_CAPTURE_LOGGING"), True
        ),
        redact=parse_bool("FAULTLENS_REDACT", env.get("FAULTLENS_REDACT"), True),
        signal=parse_signal_mode(env.get("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN")),
        storm_burst=int(
            parse_number("FAULTLENS_STORM_BURST", env.get("FAULTLENS_STORM_BURST"), 10, minimum=1)
        ),
        storm_refill_seconds=parse_number(
            "FAULTLENS_STORM_REFILL_SECONDS",
            env.get("FAULTLENS_STORM_REFILL_SECONDS"),
            10.0,
            minimum=0.001,
        ),
        storm_interval_seconds=parse_number(
            "FAULTLENS_STORM_INTERVAL_SECONDS",
            env.get("FAULTLENS_STORM_INTERVAL_SECONDS"),
            1.0,
            minimum=0.001,
        ),
        max_fingerprints=int(
            parse_number(
                "FAULTLENS_MAX_FINGERPRINTS",
                env.get("FAULTLENS_MAX_FINGERPRINTS"),
                20_000,
                minimum=1,
            )
        ),
        in_app_include=_split(env.get("FAULTLENS_IN_APP")),
    )
