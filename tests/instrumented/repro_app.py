"""Run by tests/test_zero_code_repros.py under the real ``opentelemetry-instrument``.

Exercises ``repro_lib`` (named in ``FAULTLENS_INSTRUMENT``) the way the libraries
of issue 13 did, and prints one JSON object of what it observed; the failures go
over OTLP to the test's receiver.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import io
import json
import pickle
import sys
import threading
import traceback
import warnings
import wsgiref.handlers
from typing import Any

from opentelemetry import trace


def watching(obj: Any) -> str:
    import wrapt
    from faultlens import _monitoring as monitoring
    from faultlens import _wrappers as wrappers

    if isinstance(obj, wrapt.FunctionWrapper):
        return "wrapped"
    monitor = monitoring.current()
    function = wrappers.python_function(obj)
    if monitor is not None and function is not None and monitor.watches(function.__code__):
        return "watched"
    return "untouched"


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    import repro_lib

    repro_lib.charge(500)  # the framework's handler of last resort turns this into a 500
    return [b"never"]


async def use_async_context_manager() -> str:
    import repro_lib

    async with repro_lib.aopened("a") as name:
        return name


def main() -> int:
    import repro_lib

    out: dict[str, Any] = {"kind": {}, "identity": {}, "frames": {}, "pickle": {}}
    out["python"] = list(sys.version_info[:2])
    out["watching"] = {
        "square": watching(repro_lib.square),
        "opened": watching(repro_lib.opened),
        "Range.index": watching(repro_lib.Range.__dict__["index"]),
    }
    # 1. kind
    with repro_lib.opened("x") as name:
        out["kind"]["contextmanager"] = name
    out["kind"]["asynccontextmanager"] = asyncio.run(use_async_context_manager())
    out["kind"]["listify"] = repro_lib.squares(4)

    # 2. identity
    class Frozen:
        pass

    repro_lib.freeze(Frozen)
    out["identity"]["setattr_is_function"] = Frozen.__setattr__ is repro_lib.frozen_setattr
    out["identity"]["is_frozen"] = repro_lib.is_frozen(Frozen)
    out["identity"]["method_read_twice"] = repro_lib.Box.method is repro_lib.Box.method
    out["identity"]["bound_call"] = repro_lib.Box().method(1)

    # 3. frames
    made = globals()["Made"] = repro_lib.make_class("Made")  # pickled by name, as a class is
    out["frames"]["made_module"] = made.__module__
    out["frames"]["made_pickles"] = type(pickle.loads(pickle.dumps(made()))) is made
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repro_lib.deprecated()
    out["frames"]["warning_file"] = caught[0].filename.rsplit("/", 1)[-1]
    out["frames"]["caller_name"] = repro_lib.caller_name()
    try:
        repro_lib.explode()
    except RuntimeError:
        shown = traceback.format_exc()
    out["frames"]["traceback_frames"] = shown.count('  File "')
    out["frames"]["faultlens_in_traceback"] = "faultlens" in shown

    # 4. pickle / copy
    f = repro_lib.square
    out["pickle"]["function"] = pickle.loads(pickle.dumps(f)) is f
    out["pickle"]["method"] = (
        pickle.loads(pickle.dumps(repro_lib.Box.method)) is repro_lib.Box.method
    )
    bound = pickle.loads(pickle.dumps(repro_lib.Box().method))
    out["pickle"]["bound"] = bound(2)
    out["pickle"]["copy"] = copy.copy(f) is f and copy.deepcopy(f) is f
    out["pickle"]["deepcopy_method"] = copy.deepcopy(repro_lib.Box.method) is repro_lib.Box.method
    registered = repro_lib.REGISTRY["square"]
    try:
        out["pickle"]["registered"] = pickle.loads(pickle.dumps(registered)) is registered
    except pickle.PicklingError:
        out["pickle"]["registered"] = "PicklingError"
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        out["pickle"]["process_pool"] = list(pool.map(repro_lib.square, [1, 2, 3]))

    # 6. raised and caught inside named code: no failures
    out["inside"] = [5 in repro_lib.Range(3) for _ in range(50)].count(False)
    out["lookup"] = repro_lib.lookup({}, "missing")

    # 8. the fate of escaped failures
    tracer = trace.get_tracer("repro_app")
    with tracer.start_as_current_span("recovered request"):
        try:
            repro_lib.charge(101)
        except ConnectionError:
            out["recovered"] = "used the fallback"
    worker = threading.Thread(target=repro_lib.crash)
    worker.start()
    worker.join()
    body = io.BytesIO()
    with tracer.start_as_current_span("wsgi request"):
        handler = wsgiref.handlers.SimpleHandler(
            io.BytesIO(),
            body,
            io.StringIO(),
            {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1"},
        )
        handler.run(wsgi_app)
    out["wsgi_status"] = body.getvalue().split(b"\r\n", 1)[0].decode()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
