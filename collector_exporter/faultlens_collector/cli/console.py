"""``faultlens console``: serve the web console for a processor until SIGINT or SIGTERM.

Also the console options ``serve --console`` and ``demo --console`` share.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from faultlens_collector.cli import CommandError
from faultlens_collector.cli.connect import add_connection_options
from faultlens_collector.console import ConsoleSettings, ConsoleSetupError, require_dependencies
from faultlens_collector.console._settings import DEFAULT_LISTEN
from faultlens_collector.report import TRACE_URL_ENV


def register(subparsers: Any) -> None:
    """Add the ``console`` subcommand."""
    parser = subparsers.add_parser(
        "console",
        help="serve the web console for a processor (needs faultlens[console])",
        description=(
            "Serve the faultlens web console: the failure groups of a processor, live, with "
            "bulk dismiss/categorize/fix, a dashboard, halts and alerts. A client of the "
            "processor's control API; bound to loopback by default."
        ),
    )
    add_connection_options(parser)
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"where the console serves HTTP (default {DEFAULT_LISTEN}; 0 as the port: any free)",
    )
    parser.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="serve HTTPS with this certificate (PEM)"
    )
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    add_page_options(parser)
    parser.set_defaults(handler=run)


def add_page_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--trace-url``, ``--allow-host`` and ``--title``."""
    parser.add_argument(
        "--trace-url",
        default=os.environ.get(TRACE_URL_ENV),
        metavar="TEMPLATE",
        help="link sample traces, e.g. 'http://jaeger:16686/trace/{trace_id}' "
        f"(default ${TRACE_URL_ENV})",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this Host header (a name the console is reached by; repeatable)",
    )
    parser.add_argument("--title", default="faultlens", help="shown in the page header")


def settings_from(args: argparse.Namespace, **overrides: Any) -> ConsoleSettings:
    """Console settings from the parsed options; CommandError when they are wrong."""
    values: dict[str, Any] = {
        "target": getattr(args, "target", ""),
        "listen": getattr(args, "listen", DEFAULT_LISTEN),
        "token": getattr(args, "token", None),
        "ca_file": getattr(args, "tls_ca", None),
        "tls_cert": getattr(args, "tls_cert", None),
        "tls_key": getattr(args, "tls_key", None),
        "trace_url": args.trace_url or None,
        "allowed_hosts": tuple(args.allow_host),
        "title": args.title,
    }
    values.update(overrides)
    try:
        return ConsoleSettings(**values)
    except ConsoleSetupError as exc:
        raise CommandError(str(exc)) from exc


def start_console(settings: ConsoleSettings) -> Any:
    """A started :class:`~faultlens_collector.console.ConsoleServer`; CommandError (one line)
    when the extra is missing or it cannot listen."""
    try:
        require_dependencies()
        from faultlens_collector.console._server import ConsoleServer

        server = ConsoleServer(settings)
        server.start()
    except ConsoleSetupError as exc:
        raise CommandError(str(exc), exit_code=1) from exc
    return server


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def run(args: argparse.Namespace) -> int:
    """Serve the console until interrupted."""
    if args.token is not None and not args.token.strip():
        raise CommandError("--token is empty")
    server = start_console(settings_from(args))
    print(
        f"faultlens: console on {server.url} for the processor at {args.target}",
        file=sys.stderr,
        flush=True,
    )
    try:
        wait_for_signal()
    finally:
        print("faultlens: stopping the console", file=sys.stderr, flush=True)
        server.stop()
    return 0
