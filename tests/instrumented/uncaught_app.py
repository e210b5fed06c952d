"""Programs that end with an uncaught exception; run by tests/test_sdk_uncaught.py.

``python uncaught_app.py CASE`` (or under ``opentelemetry-instrument`` for the
``instrumented`` case) exports to ``$OTEL_EXPORTER_OTLP_ENDPOINT`` through a
``BatchSpanProcessor`` whose schedule delay is 60 s: what arrives before the
process ends was flushed. It prints JSON lines on stdout: ``observed`` (what the
program can see of the hooks once faultlens is installed) and one per hook of
the program that ran (``hook``: the frames on its stack and in the traceback
that are faultlens'). The cases:

``bare``                 no faultlens: the exit status and traceback to compare with
``install_first``        ``faultlens.install()`` before the TracerProvider exists
``no_shutdown``          a provider that never shuts down: only faultlens' flush exports
``hook_before``          the program's ``sys.excepthook`` set before install
``hook_after``           … set after install
``keyboard``             ``KeyboardInterrupt`` ends the program: no failure
``system_exit``          ``sys.exit(3)``: no failure
``console``              an embedded console prints an error, the program ends well
``interactive``          ``python -i``: the error ends in the REPL, not the process
``thread_hook_before``   a thread dies; the program's ``threading.excepthook`` set before
``thread_hook_after``    … set after install
``thread_captured``      a thread dies of an exception ``@faultlens.capture`` recorded
``instrumented``         under ``opentelemetry-instrument``: a thread, then the main thread
"""

from __future__ import annotations

import code
import importlib.util
import json
import os
import sys
import threading
import traceback
from types import FrameType, TracebackType
from typing import Any

CASE = sys.argv[1]
_spec = importlib.util.find_spec("faultlens")
assert _spec is not None
assert _spec.submodule_search_locations is not None
PACKAGE = os.path.realpath(next(iter(_spec.submodule_search_locations))) + os.sep


def emit(**values: Any) -> None:
    print(json.dumps(values), flush=True)


def faultlens_frames(frame: FrameType | None, tb: TracebackType | None) -> list[str]:
    """The faultlens files on the stack from ``frame`` down and in ``tb``."""
    files = []
    while frame is not None:
        files.append(frame.f_code.co_filename)
        frame = frame.f_back
    files += [entry.filename for entry in traceback.extract_tb(tb)]
    return [name for name in files if os.path.realpath(name).startswith(PACKAGE)]


def users_hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    emit(hook="sys", type=exc_type.__name__, faultlens=faultlens_frames(sys._getframe(), tb))
    sys.__excepthook__(exc_type, exc, tb)


def users_thread_hook(args: threading.ExceptHookArgs) -> None:
    frames = faultlens_frames(sys._getframe(), args.exc_traceback)
    emit(hook="threading", type=args.exc_type.__name__, faultlens=frames)
    threading.__excepthook__(args)


def make_provider(**options: Any) -> None:
    import faultlens
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].removeprefix("http://")
    provider = TracerProvider(**options)
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    trace.set_tracer_provider(provider)
    faultlens.configure(tracer_provider=provider)


def observe() -> None:
    observed: dict[str, Any] = {
        "python": list(sys.version_info[:2]),
        # the hooks are the program's own, or still the defaults
        "sys_hook_untouched": sys.excepthook
        is (users_hook if CASE == "hook_before" else sys.__excepthook__),
        "thread_hook_untouched": threading.excepthook
        is (users_thread_hook if CASE == "thread_hook_before" else threading.__excepthook__),
        "global_events": None,
    }
    if "faultlens" in sys.modules and sys.version_info >= (3, 12):
        from faultlens import _monitoring as monitoring

        engine = monitoring.current()
        if engine is not None:
            observed["global_events"] = sys.monitoring.get_events(engine.tool)
    emit(observed=observed)


def marker() -> None:
    """A handled failure exported at exit: the pipeline works, whatever else arrives."""
    import faultlens

    faultlens.record_failure(LookupError("marker"))


def die_in_a_thread(target: Any = None) -> None:
    def work() -> None:
        raise ZeroDivisionError("ratio in a thread")

    thread = threading.Thread(target=target or work)
    thread.start()
    thread.join()


def main() -> None:
    raise RuntimeError("config store unreachable")


if CASE == "bare":
    make_provider()
elif CASE == "instrumented":
    observe()
    die_in_a_thread()
else:
    import faultlens

    if CASE == "hook_before":
        sys.excepthook = users_hook
    if CASE == "thread_hook_before":
        threading.excepthook = users_thread_hook
    if CASE == "install_first":
        faultlens.install()
        make_provider()
    else:
        make_provider(shutdown_on_exit=CASE != "no_shutdown")
        faultlens.install()
    observe()
    if CASE == "hook_after":
        sys.excepthook = users_hook
    elif CASE == "thread_hook_after":
        threading.excepthook = users_thread_hook
    if CASE in ("keyboard", "system_exit", "console", "interactive"):
        marker()
    if CASE == "keyboard":
        raise KeyboardInterrupt
    if CASE == "system_exit":
        sys.exit(3)
    if CASE == "console":
        code.InteractiveInterpreter().runsource("1/0")
        sys.exit(0)
    if CASE.startswith("thread"):
        if CASE == "thread_captured":

            @faultlens.capture
            def captured() -> None:
                raise ZeroDivisionError("ratio in a thread")

            die_in_a_thread(captured)
        else:
            die_in_a_thread()
            die_in_a_thread(sys.exit)  # SystemExit ends a thread quietly: no failure
        sys.exit(0)

main()
