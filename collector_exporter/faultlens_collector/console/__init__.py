"""The faultlens web console: triage failure groups in a browser.

A client of the processor's ``faultlens.v1`` control API like the command line, so it
works against any processor with that processor's token. It serves a small front-end
(HTML, JavaScript and CSS shipped in this package: no CDN, works offline) over a JSON
API under ``/api/v1/`` described at ``/api/v1/openapi.json``, and pushes live changes
to open pages with server-sent events.

It needs the ``console`` extra (FastAPI, uvicorn): ``pip install 'faultlens[console]'``;
:func:`require_dependencies` says so in one line when they are missing.

::

    server = ConsoleServer(ConsoleSettings(target="127.0.0.1:4317"))
    server.start()           # binds (127.0.0.1:8080 by default) and serves in a thread
    print(server.url)
    server.stop()
"""

from __future__ import annotations

from faultlens_collector.console._settings import ConsoleSettings, ConsoleSetupError

__all__ = ["ConsoleServer", "ConsoleSettings", "ConsoleSetupError", "require_dependencies"]

#: The modules the console needs beyond faultlens' own dependencies.
_DEPENDENCIES = ("fastapi", "uvicorn")


def require_dependencies() -> None:
    """Raise :class:`ConsoleSetupError` (one line) when the ``console`` extra is missing."""
    import importlib.util

    missing = [name for name in _DEPENDENCIES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConsoleSetupError(
            f"the web console needs {' and '.join(missing)}: pip install 'faultlens[console]'"
        )


def __getattr__(name: str) -> object:
    # The server imports FastAPI: only when asked for, after require_dependencies().
    if name == "ConsoleServer":
        require_dependencies()
        from faultlens_collector.console._server import ConsoleServer

        return ConsoleServer
    raise AttributeError(name)
