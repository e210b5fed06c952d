"""Zero-code instrumentation: ``opentelemetry-instrument python app.py`` records failures.

:class:`FaultlensInstrumentor` is an OpenTelemetry ``BaseInstrumentor``
registered under the ``opentelemetry_instrumentor`` entry point ``faultlens``,
so ``opentelemetry-instrument`` loads it like any contrib instrumentation and
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=faultlens`` leaves it out. When it runs
it

* installs the SDK's out-of-band hooks: uncaught-exception capture (no
  ``sys.excepthook`` replaced, :mod:`faultlens._excepthooks`), the
  asyncio exception-handler hook, and logging capture (honouring
  ``FAULTLENS_CAPTURE_LOGGING``), so exceptions an application swallows but
  logs arrive as ``failure.handled=true``;
* observes the functions named by ``FAULTLENS_INSTRUMENT`` (see
  :mod:`faultlens.instrumentation._spec`), now for modules already imported and
  through post-import hooks for the others (``failure.source=auto``): on
  Python 3.12+ the ``sys.monitoring`` engine (:mod:`faultlens._monitoring`)
  watches their code and nothing is replaced; on 3.10/3.11, or when no tool id
  is free, they are wrapped (:mod:`faultlens._wrappers`) and module globals that
  ``from``-imported an original before it was wrapped are rebound
  (:mod:`faultlens.instrumentation._aliases`).

With ``FAULTLENS_DISABLED`` set it does nothing at all. A malformed entry or a
target that cannot be wrapped gets one warning naming it (logger
``faultlens.instrumentation``) and the application runs on untouched.
``uninstrument()`` restores every original object (identity), stops watching
(and frees the ``sys.monitoring`` tool id once nothing is watched), removes its
post-import hooks and uninstalls the hooks it installed.

Programmatic use (same behaviour as the command)::

    FaultlensInstrumentor().instrument(targets="shop.orders:*,shop.cart:Cart.*")

See docs/instrumentation.md.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from faultlens._internal_errors import report_internal_error
from faultlens._recorder import configure, is_disabled
from faultlens.instrumentation._session import Session, warn_spec_error
from faultlens.instrumentation._spec import Target, parse_spec

__all__ = ["ENV_TARGETS", "FaultlensInstrumentor"]

#: The environment variable naming the targets (docs/instrumentation.md).
ENV_TARGETS = "FAULTLENS_INSTRUMENT"


class FaultlensInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Wraps ``FAULTLENS_INSTRUMENT`` targets and installs the SDK's hooks.

    ``instrument()`` accepts, besides the standard arguments:

    * ``targets`` — a spec string or an iterable of entries used instead of
      ``FAULTLENS_INSTRUMENT``;
    * ``tracer_provider`` / ``logger_provider`` — passed to
      :func:`faultlens.configure` for faultlens' own emissions;
    * ``logging_capture`` — False leaves logging alone (default: install it,
      unless ``FAULTLENS_CAPTURE_LOGGING=false``).

    It never raises: problems are logged and the application goes on.
    """

    _session: Session | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        """Nothing: faultlens instruments the application's own code."""
        return ()

    @property
    def session(self) -> Session | None:
        """What the current instrumentation put in place (None when not instrumented)."""
        return self._session

    def _instrument(self, **kwargs: Any) -> None:
        try:
            if is_disabled():
                return
            providers = {
                key: kwargs[key]
                for key in ("tracer_provider", "logger_provider")
                if kwargs.get(key) is not None
            }
            if providers:
                configure(**providers)
            session = Session(_targets(kwargs.get("targets")))
            self._session = session
            session.start(logging_capture=bool(kwargs.get("logging_capture", True)))
        except Exception:
            report_internal_error("FaultlensInstrumentor.instrument")

    def _uninstrument(self, **kwargs: Any) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.stop()
        except Exception:
            report_internal_error("FaultlensInstrumentor.uninstrument")


def _targets(explicit: str | Iterable[str] | None) -> list[Target]:
    raw = os.environ.get(ENV_TARGETS) if explicit is None else explicit
    targets, errors = parse_spec(raw)
    for error in errors:
        warn_spec_error(error)
    return targets
