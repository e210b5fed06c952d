"""Scenarios for the ``sys.monitoring`` engine (3.12+), run by tests/test_monitoring_engine.py.

Instruments ``engine_lib:*`` in process with an in-memory exporter and prints,
for each scenario, the failure events it produced: ``[type, handled, source,
span, status]``, plus a few facts about the engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

import faultlens
from faultlens import _monitoring as monitoring
from faultlens.instrumentation import FaultlensInstrumentor
from memory_telemetry import failures
from opentelemetry import trace

results: dict[str, Any] = {}


def scenario(name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def run(body: Callable[[], Any]) -> Callable[[], Any]:
        value = body()
        results[name] = {"events": failures(), "value": value}
        return body

    return run


instrumentor = FaultlensInstrumentor()
instrumentor.instrument(targets="engine_lib:*", skip_dep_check=True, logging_capture=False)
import engine_lib  # noqa: E402

monitor = monitoring.current()
results["tool"] = monitor.tool if monitor else None
results["watched_closure"] = monitor is not None and monitor.watches(
    engine_lib.make_closure().__code__
)
tracer = trace.get_tracer("scenarios")


@scenario("caught")
def _() -> Any:
    with contextlib.suppress(ValueError):
        engine_lib.fail()


@scenario("inside")
def _() -> Any:
    return engine_lib.fail_inside()


@scenario("back_inside")
def _() -> Any:
    return engine_lib.catch_callback(lambda: engine_lib.fail("via callback"))


@scenario("through_callback")
def _() -> Any:
    def callback() -> None:
        engine_lib.fail("escapes the callback too")

    try:
        engine_lib.call_back(callback)
    except ValueError:
        return "caught by the app"


@scenario("generator")
def _() -> Any:
    try:
        for _ in engine_lib.numbers():
            pass
    except LookupError:
        return "caught"


@scenario("thrown_into_contextmanager")
def _() -> Any:
    try:
        with engine_lib.managed():
            raise KeyError("raised by the with body")
    except KeyError:
        return "not from named code"


@scenario("closure")
def _() -> Any:
    try:
        engine_lib.make_closure()()
    except KeyError:
        return "caught"


@scenario("hasattr")
def _() -> Any:
    return hasattr(engine_lib.Lazy(), "missing")


@scenario("finally_then_caught")
def _() -> Any:
    def middle() -> None:
        try:
            engine_lib.fail("through finally")
        finally:
            pass

    try:
        middle()
    except ValueError:
        return "caught"


@scenario("except_reraise_then_caught")
def _() -> Any:
    def middle() -> None:
        try:
            engine_lib.fail("re-raised")
        except ValueError:
            raise

    try:
        middle()
    except ValueError:
        return "caught"


@scenario("not_matching_handler")
def _() -> Any:
    def middle() -> None:
        try:  # noqa: SIM105 - the bytecode of a handler that does not match
            engine_lib.fail("no match")
        except TypeError:
            pass

    try:
        middle()
    except ValueError:
        return "caught outside"


@scenario("translated_and_caught")
def _() -> Any:
    class ApiError(Exception):
        pass

    def middle() -> None:
        try:
            engine_lib.fail("translated")
        except ValueError as exc:
            raise ApiError("api") from exc

    try:
        middle()
    except ApiError:
        return "caught"


@scenario("loop_retry")
def _() -> Any:
    attempts = 0
    for _ in range(3):
        try:
            engine_lib.fail("attempt")
        except ValueError:
            attempts += 1
            continue
    return attempts


@scenario("span_caught")
def _() -> Any:
    with tracer.start_as_current_span("request"):
        try:
            engine_lib.fail("inside a request")
        except ValueError:
            return "recovered"


@scenario("thread")
def _() -> Any:
    worker = threading.Thread(target=engine_lib.fail, args=("in a thread",))
    worker.start()
    worker.join()


@scenario("future")
def _() -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(engine_lib.fail, "in a pool")
        try:
            future.result()
        except ValueError:
            return "caught from the future"


async def _awaited() -> str:
    try:
        await engine_lib.afail()
    except ConnectionError:
        return "caught"
    return "no"


async def _task() -> str:
    task = asyncio.create_task(engine_lib.afail())
    try:
        await task
    except ConnectionError:
        return "caught"
    return "no"


async def _cancelled() -> str:
    task = asyncio.create_task(engine_lib.sleeper())
    await asyncio.sleep(0.01)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "cancelled"
    return "no"


scenario("await")(lambda: asyncio.run(_awaited()))
scenario("task")(lambda: asyncio.run(_task()))
scenario("cancelled")(lambda: asyncio.run(_cancelled()))
results["followed_after"] = monitor.followed if monitor else None


def _global_events() -> list[str] | None:
    if monitor is None:
        return None
    mask = sys.monitoring.get_events(monitor.tool)  # type: ignore[attr-defined,unused-ignore]
    events = sys.monitoring.events  # type: ignore[attr-defined,unused-ignore]
    return sorted(name for name in dir(events) if name.isupper() and mask & getattr(events, name))


# the global events never change with failures: switching them re-instruments all code
results["global_events_after_a_burst"] = _global_events()
with contextlib.suppress(KeyError):
    {}["an exception raised and caught outside named code"]
results["global_events_idle"] = _global_events()


# the decorator: the function itself comes back, watched
@faultlens.capture(category="payments")
def decorated() -> None:
    raise ValueError("decorated")


results["decorator_identity"] = monitor is not None and monitor.watches(decorated.__code__)
results["decorator_is_function"] = type(decorated).__name__ == "function"


@scenario("decorator")
def _() -> Any:
    try:
        decorated()
    except ValueError:
        return "caught"


@scenario("with_block")
def _() -> Any:
    try:
        with faultlens.capture():
            raise OSError("in a block")
    except OSError:
        return "caught"


class Outcomes:
    """A client of the engine's API: the fates of exceptions escaping its codes."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def on_outcome(self, outcome: monitoring.Outcome) -> None:
        self.outcomes.append(f"{type(outcome.exception).__name__}:{outcome.fate}")


# faultlens run's swallowed-exception detector observes the same engine: one tool id
client = Outcomes()
codes = [engine_lib.fail_inside.__code__, engine_lib.fail.__code__]
if monitor is not None:
    from faultlens_collector.detection import swallowed

    instrumentor.uninstrument()
    monitor = monitoring.acquire()
    assert monitor is not None
    monitor.watch(codes, client)
    detector = swallowed.Detector(["engine_lib"])
    assert detector.start()
    failures()  # clears what earlier scenarios left
    engine_lib.fail_inside()  # caught inside engine_lib, not re-raised nor logged
    with contextlib.suppress(ValueError):
        engine_lib.fail("outside")  # escapes engine_lib: caught here, not the project's
    monitor.unwatch(codes, client)
    swallowed_events = [
        f"{exception_type}@{handler}"
        for exception_type, handler in failures(("exception.type", "faultlens.handler"))
        if handler is not None
    ]
    tools = {tool: sys.monitoring.get_tool(tool) for tool in range(6)}
    results["detector"] = {
        "swallowed": swallowed_events,
        "outcomes": client.outcomes,
        "same_tool": detector.tool == monitor.tool,
        "tools_held": sorted(name for name in tools.values() if name),
    }
    detector.stop()
else:
    results["detector"] = None
# nothing left: the decorator keeps its code watched, so the tool stays taken
results["tool_after"] = sys.monitoring.get_tool(results["tool"]) if results["tool"] else None
print(json.dumps(results))
