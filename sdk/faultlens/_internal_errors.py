"""faultlens' own failures: logged once per place, never raised into the program.

A bug in faultlens, an exporter that fails or a broken hook must not become the
application's outage, nor flood its log. Every part of faultlens — the SDK and the
processor alike (through :mod:`faultlens.shared`) — reports what it caught with
:func:`report_internal_error`, through the ``faultlens`` logger.
"""

from __future__ import annotations

import logging

_log = logging.getLogger("faultlens")
_reported: set[str] = set()


def report_internal_error(where: str) -> None:
    """Log a faultlens failure once per ``where``; never raises. Call from an ``except``."""
    try:
        if where in _reported:
            return
        _reported.add(where)
        _log.warning(
            "faultlens: internal error in %s (further ones are silent)", where, exc_info=True
        )
    except Exception:  # pragma: no cover - logging itself is broken
        pass


def forget_reported() -> None:
    """Report each place again (the recorder's reset)."""
    _reported.clear()
