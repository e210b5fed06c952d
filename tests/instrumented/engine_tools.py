"""How the engine uses ``sys.monitoring`` tool ids; run by tests/test_monitoring_engine.py.

``python engine_tools.py held``: tool ids 3, 4 and 5 are held by other tools,
so instrumenting falls back to wrapping with one warning. ``python
engine_tools.py release``: uninstrumenting gives the tool id back and leaves no
events set. ``python engine_tools.py threads``: ``faultlens.install()`` alone
holds the tool id with no global event; watching targets switches them on and
off again. ``python engine_tools.py uncaught``: an exception escaping named
code ends the program uncaught (the failure is printed as JSON at exit).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import sys

from faultlens import _monitoring as monitoring
from faultlens.instrumentation import FaultlensInstrumentor
from memory_telemetry import failures

mode = sys.argv[1]
out: dict[str, object] = {}
warnings: list[str] = []


class Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        warnings.append(record.getMessage())


logging.getLogger("faultlens").addHandler(Collect())
instrumentor = FaultlensInstrumentor()
if mode == "held":
    for tool in (3, 4, 5):
        sys.monitoring.use_tool_id(tool, f"other{tool}")
    instrumentor.instrument(targets="engine_lib:*", skip_dep_check=True, logging_capture=False)
    import engine_lib
    import wrapt

    out["wrapped"] = isinstance(engine_lib.fail, wrapt.FunctionWrapper)
    out["warnings"] = warnings
    out["tools"] = [sys.monitoring.get_tool(tool) for tool in range(6)]
elif mode == "release":
    sys.monitoring.use_tool_id(4, "other4")  # faultlens takes the next free one
    instrumentor.instrument(targets="engine_lib:*", skip_dep_check=True, logging_capture=False)
    import engine_lib

    monitor = monitoring.current()
    out["tool"] = monitor.tool if monitor else None
    out["held"] = sys.monitoring.get_tool(3)
    with contextlib.suppress(ValueError):
        engine_lib.fail()
    instrumentor.uninstrument()
    out["after"] = [sys.monitoring.get_tool(tool) for tool in range(6)]
    out["events_after"] = sys.monitoring.get_events(3)
    out["current_after"] = monitoring.current() is None
elif mode == "threads":
    import faultlens

    def state() -> list[object]:
        events = sys.monitoring.get_events(4)
        return [sys.monitoring.get_tool(4), events, monitoring.current() is not None]

    faultlens.install()  # watches threads' uncaught exceptions: the tool id, no global event
    out["installed"] = state()
    instrumentor.instrument(targets="engine_lib:*", skip_dep_check=True, logging_capture=False)
    out["instrumented"] = state()
    instrumentor.uninstrument()  # the hooks were installed before: they stay
    out["uninstrumented"] = state()
    faultlens.uninstall()
    out["uninstalled"] = state()
elif mode == "uncaught":
    instrumentor.instrument(targets="engine_lib:*", skip_dep_check=True, logging_capture=False)
    import engine_lib

    def report() -> None:
        print(json.dumps(failures(("failure.handled", "failure.severity", "failure.source"))))

    atexit.register(report)
    engine_lib.fail("uncaught")
print(json.dumps(out))
