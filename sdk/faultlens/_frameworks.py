"""Frames that decide what happened to an exception: error handlers of last resort, and holders.

The capture engine (:mod:`faultlens._monitoring`) follows an exception that
escaped named code until it learns its fate. Two kinds of frames end or pause
that search:

* **handlers of last resort** (:data:`LAST_RESORT`): a server's or a runtime's
  catch-all, which turns the exception into a 500 response, a printed traceback
  or a failed task. An exception caught there *escaped* the application:
  ``failure.handled=false``, and the span current there (the request's server
  span) gets status ERROR. Caught anywhere else, by application code, it was
  handled (``failure.handled=true``).
* **holders** (:data:`HOLDERS`): code that stores the exception to hand it over
  later (a future, an asyncio task, a pool's result). Its fate is decided where
  it is raised again (``future.result()``, ``await task``) or, if it never is,
  when the program ends.

Frames are named by ``(module, qualified name)`` of the code they run — the
module as in the frame's ``__name__`` global, the qualified name as
``co_qualname`` (Python 3.11+) — so nothing here imports the frameworks.
"""

from __future__ import annotations

from types import CodeType
from typing import Final, Literal

Role = Literal["last_resort", "holder"]

#: Catch-alls that end a request, a thread or a callback with the exception.
LAST_RESORT: Final = frozenset(
    {
        # WSGI frameworks and servers
        ("flask.app", "Flask.wsgi_app"),
        ("werkzeug.serving", "WSGIRequestHandler.run_wsgi"),
        ("django.core.handlers.exception", "convert_exception_to_response.<locals>.inner"),
        ("gunicorn.workers.sync", "SyncWorker.handle"),
        ("gunicorn.workers.gthread", "ThreadWorker.handle"),
        ("gunicorn.workers.base_async", "AsyncWorker.handle"),
        ("wsgiref.handlers", "BaseHandler.run"),
        # ASGI frameworks and servers
        ("starlette.middleware.errors", "ServerErrorMiddleware.__call__"),
        ("uvicorn.protocols.http.h11_impl", "RequestResponseCycle.run_asgi"),
        ("uvicorn.protocols.http.httptools_impl", "RequestResponseCycle.run_asgi"),
        ("hypercorn.utils", "run_app"),
        # task runners
        ("celery.app.trace", "build_tracer.<locals>.trace_task"),
        # the standard library's own catch-alls
        ("threading", "Thread._bootstrap_inner"),
        ("socketserver", "BaseServer._handle_request_noblock"),
        ("socketserver", "ThreadingMixIn.process_request_thread"),
        ("asyncio.events", "Handle._run"),
    }
)

#: Code that keeps the exception for later (a future, a task, a pool result).
HOLDERS: Final = frozenset(
    {
        ("concurrent.futures.thread", "_WorkItem.run"),
        ("concurrent.futures.process", "_process_worker"),
        ("multiprocessing.pool", "worker"),
        ("asyncio.tasks", "Task.__step"),
        ("asyncio.tasks", "Task.__step_run_and_handle_result"),
    }
)

#: An exception that leaves a coroutine for this frame went into a C-implemented
#: asyncio task (the frame that runs the task's step): it is held, not caught.
TASK_RUNNERS: Final = frozenset({("asyncio.events", "Handle._run")})


def frame_name(code: CodeType, module: object) -> tuple[str, str]:
    """``(module, qualified name)`` of a frame running ``code``."""
    qualname = getattr(code, "co_qualname", code.co_name)
    return (module if isinstance(module, str) else "", qualname)


def role_of(code: CodeType, module: object) -> Role | None:
    """What a frame running ``code`` in ``module`` does with an exception it catches."""
    name = frame_name(code, module)
    if name in LAST_RESORT:
        return "last_resort"
    if name in HOLDERS:
        return "holder"
    return None


def runs_tasks(code: CodeType, module: object) -> bool:
    """True for the frame that steps C-implemented asyncio tasks."""
    return frame_name(code, module) in TASK_RUNNERS
