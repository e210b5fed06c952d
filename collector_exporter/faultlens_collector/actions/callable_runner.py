"""Run a hook given as a Python callable, in a child process that can be killed.

Invoked by the hook executor as ``python <this file> package.module:function``
(the file is run by path so that the child starts without importing faultlens;
``python -m faultlens_collector.actions.callable_runner`` works as well). The
callable is imported from the hook's working directory and ``sys.path``, and
called with one argument: the JSON document read from stdin (a dict, see
``docs/actions.md``). Coroutine functions are run with :func:`asyncio.run`.

Exit status: 0 when the callable returns anything but ``False``; 1 when it
returns ``False`` or raises (the traceback goes to stderr, i.e. into the
execution's output tail); 2 when the target cannot be imported or the input is
not JSON. This module imports nothing from faultlens on purpose.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import traceback
from typing import Any


def resolve(target: str) -> Any:
    """Import ``package.module:attr.path`` and return the object it names."""
    module_name, _, attribute_path = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute_path.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj


def main(argv: list[str]) -> int:
    """Run the callable named by ``argv[1]`` on the JSON read from stdin."""
    if len(argv) != 2 or ":" not in argv[1]:
        print("usage: callable_runner package.module:function", file=sys.stderr)
        return 2
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path[0] = os.getcwd()  # run by path: import from the hook's cwd, not from here
    try:
        payload = json.loads(sys.stdin.buffer.read() or b"null")
        function = resolve(argv[1])
    except Exception:
        traceback.print_exc()
        return 2
    try:
        result = function(payload)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
    except Exception:
        traceback.print_exc()
        return 1
    return 1 if result is False else 0


async def _await(awaitable: Any) -> Any:
    return await awaitable


if __name__ == "__main__":
    sys.exit(main(sys.argv))
