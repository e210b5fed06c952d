"""Record exceptions that asyncio reports through the loop's exception handler.

That covers exceptions of tasks and futures nobody retrieved ("Task exception
was never retrieved", reported when the task is garbage-collected) and
exceptions escaping callbacks scheduled on the loop. They are recorded as
escaped failures with source ``asyncio``; the loop's own handler (or a custom
one set with ``loop.set_exception_handler``) still runs afterwards.

The hook wraps ``asyncio.BaseEventLoop.call_exception_handler``, so it covers
every standard-library event loop, including loops created after installing.
Loops not derived from ``BaseEventLoop`` (uvloop) are not covered.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import wrapt

from faultlens._internal_errors import report_internal_error
from faultlens._recorder import record_failure

_lock = threading.Lock()
_original: list[Callable[..., Any]] = []


def _call_exception_handler(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        context = args[0] if args else kwargs.get("context", {})
        exc = context.get("exception") if isinstance(context, dict) else None
        if isinstance(exc, BaseException):
            message = context.get("message")
            attributes = {"asyncio.message": message} if isinstance(message, str) else None
            record_failure(exc, handled=False, source="asyncio", attributes=attributes)
    except Exception:
        report_internal_error("asyncio hook")
    return wrapped(*args, **kwargs)


def install_asyncio_hook() -> None:
    """Start recording exceptions passed to asyncio loops' exception handlers (idempotent)."""
    with _lock:
        if _original:
            return
        _original.append(asyncio.BaseEventLoop.call_exception_handler)
        wrapt.wrap_function_wrapper(
            asyncio.BaseEventLoop, "call_exception_handler", _call_exception_handler
        )


def uninstall_asyncio_hook() -> None:
    """Restore ``BaseEventLoop.call_exception_handler`` exactly."""
    with _lock:
        if _original:
            asyncio.BaseEventLoop.call_exception_handler = _original.pop()  # type: ignore[method-assign]


def asyncio_hook_installed() -> bool:
    """True while the hook is installed."""
    return bool(_original)
