"""Run by tests/test_instrumentation_command.py under the real ``opentelemetry-instrument``.

Calls one target of every kind, catching what they raise without logging it (only
the wrappers can report those), swallows and logs one exception from a function
that is not a target, and prints as JSON which functions were found wrapped or watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys

import wrapt
from opentelemetry import trace


def _observed(obj: object) -> bool:
    """Wrapped (3.10/3.11), or its code watched by the sys.monitoring engine (3.12+)."""
    from faultlens import _monitoring as monitoring
    from faultlens import _wrappers as wrappers

    if isinstance(obj, wrapt.FunctionWrapper):
        return True
    function = wrappers.python_function(obj)
    engine = monitoring.current()
    return engine is not None and function is not None and engine.watches(function.__code__)


async def drain(stream: object) -> None:
    async for _ in stream:  # type: ignore[attr-defined]
        pass


def main() -> int:
    import kinds_more
    import kinds_targets as t

    log = logging.getLogger("kinds_app")
    calls = [
        lambda: t.plain(0),
        lambda: asyncio.run(t.coro(3)),
        lambda: list(t.gen(1)),
        lambda: asyncio.run(drain(t.agen(1))),
        lambda: t.Store().method("b"),
        lambda: t.Store.static("seven"),
        lambda: t.Store.klass("db:5432"),
        lambda: t.Cart().checkout(5000),
        lambda: kinds_more.parse(b"\xff"),
    ]
    for call in calls:
        with contextlib.suppress(Exception):
            call()
    tracer = trace.get_tracer("kinds_app")
    with (
        tracer.start_as_current_span(
            "handle request", record_exception=False, set_status_on_exception=False
        ),
        contextlib.suppress(NotImplementedError),
    ):
        t.charge(42)
    try:
        t.fetch_rate("JPY")
    except TimeoutError:
        log.exception("pricing timed out; using the cached rate")
    assert t.Cart().checkout(3) == 3
    assert kinds_more.path("x") == "/srv/x"
    wrapped = {
        "plain": t.plain,
        "Store.static": t.Store.__dict__["static"],
        "Cart.checkout": t.Cart.__dict__["checkout"],
        "kinds_more.parse": kinds_more.parse,
        "kinds_more.join": kinds_more.join,
        "fetch_rate": t.fetch_rate,
    }
    print(json.dumps({k: _observed(v) for k, v in wrapped.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
