"""The console's HTTP(S) server: uvicorn on a thread of its own.

:class:`ConsoleServer` binds the listen address itself (so a taken port is a clear
:class:`ConsoleSetupError` before anything runs, and port 0 picks a free one), then
serves the application with uvicorn on a daemon thread with its own event loop;
:meth:`ConsoleServer.stop` ends open event streams and stops within a couple of
seconds. ``faultlens console`` and ``faultlens serve --console`` both use it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any, Final

import uvicorn

from faultlens_collector.console._app import create_app
from faultlens_collector.console._settings import ConsoleSettings, ConsoleSetupError, host_port

#: Seconds open connections (event streams) get to finish when the console stops.
GRACE_SECONDS: Final = 2


class ConsoleServer:
    """One running console (see the module docstring)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self._socket: socket.socket | None = None
        self._app: Any = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Where a browser opens the console."""
        host, _ = host_port(self.settings.listen)
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.settings.secure else 'http'}://{shown}:{self.port}/"

    def start(self) -> None:
        """Bind and start serving; ConsoleSetupError when the address cannot be used."""
        host, port = host_port(self.settings.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ConsoleSetupError(
                f"the console cannot listen on {self.settings.listen}: {exc}"
            ) from exc
        sock.listen(128)
        self._socket = sock
        self.port = sock.getsockname()[1]
        self._app = create_app(self.settings)
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            log_config=None,  # leave the process's logging as it is (uvicorn.error propagates)
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=GRACE_SECONDS,
            ssl_certfile=str(self.settings.tls_cert) if self.settings.tls_cert else None,
            ssl_keyfile=str(self.settings.tls_key) if self.settings.tls_key else None,
            server_header=False,
        )
        try:
            config.load()
        except Exception as exc:  # unreadable TLS files, mostly
            self._close_socket()
            raise ConsoleSetupError(f"the console cannot start: {exc}") from exc
        server = uvicorn.Server(config)
        self._server = server
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(server, started))
            except BaseException as exc:
                failure.append(exc)
                started.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="faultlens-console", daemon=True)
        self._thread.start()
        started.wait(30)
        if failure or not server.started:
            self.stop()
            raise ConsoleSetupError(
                f"the console did not start: {failure[0] if failure else 'timeout'}"
            )

    async def _serve(self, server: uvicorn.Server, started: threading.Event) -> None:
        assert self._socket is not None
        task = asyncio.ensure_future(server.serve(sockets=[self._socket]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        started.set()
        await task

    def stop(self) -> None:
        """Stop serving (open streams end) and release the port."""
        if self._app is not None:
            console = self._app.state.console
            console.hub.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(GRACE_SECONDS + 5)
            self._thread = None
        self._close_socket()
        if self._app is not None:
            self._app.state.console.upstream.close()
            self._app = None

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> ConsoleServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
