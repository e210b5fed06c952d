"""``faultlens serve``: run the processor until SIGINT or SIGTERM.

The processor's modules are imported when ``serve`` runs, not when the command line
starts: every other subcommand is a client and needs none of them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from faultlens.shared import parse_endpoint

from faultlens_collector.channels import DEFAULT_ADDRESS
from faultlens_collector.cli import CommandError
from faultlens_collector.cli.connect import TOKEN_ENV
from faultlens_collector.cli.console import add_page_options

if TYPE_CHECKING:
    from faultlens_collector.causes.listener import RootCauseSettings
    from faultlens_collector.processor.server import Processor, ProcessorSettings

DEFAULT_STORE: Final = "faultlens.db"


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the processor: OTLP/gRPC in, failure groups stored, control API",
        description=(
            "Receive OTLP traces, logs and metrics over gRPC, group the failures they carry "
            "into a SQLite store (or a PostgreSQL database shared by several processors), "
            "and serve the faultlens control API on the same port."
        ),
    )
    parser.add_argument("--listen", default=DEFAULT_ADDRESS, metavar="HOST:PORT")
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="PATH|URL",
        help="SQLite file (default faultlens.db); :memory: for a throwaway store; "
        "postgresql://USER@HOST[:PORT]/DB[?sslmode=...] for a database shared by several "
        "processors (needs faultlens[postgres]; give the password with PGPASSWORD or "
        "~/.pgpass rather than in the URL)",
    )
    parser.add_argument(
        "--forward",
        metavar="HOST:PORT",
        help="pass everything received on, unchanged, to this OTLP endpoint (https:// for TLS)",
    )
    parser.add_argument(
        "--forward-header",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="gRPC metadata for the --forward hop (repeatable)",
    )
    parser.add_argument(
        "--forward-queue-mib",
        type=float,
        default=64.0,
        metavar="MIB",
        help="memory for requests waiting to be forwarded (default 64)",
    )
    parser.add_argument(
        "--max-request-mib",
        type=float,
        default=64.0,
        metavar="MIB",
        help="larger requests are refused with RESOURCE_EXHAUSTED (default 64)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="rules, fix hooks, halt rules and alert settings (TOML; see docs/actions.md)",
    )
    parser.add_argument(
        "--alerts",
        metavar="HOST:PORT",
        help="send alerts as OTLP log records to this endpoint (https:// for TLS); "
        "overrides [alerts] target",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help=f"require this bearer token on every call (or set ${TOKEN_ENV})",
    )
    parser.add_argument("--tls-cert", type=Path, metavar="FILE", help="server certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="server private key (PEM)")
    parser.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="FILE",
        help="require client certificates from this CA",
    )
    parser.add_argument("--workers", type=int, default=16, help="RPC threads (default 16)")
    parser.add_argument(
        "--max-pending-requests",
        type=int,
        default=256,
        metavar="N",
        help="requests waiting for or holding an RPC thread; beyond this, OTLP requests are "
        "answered UNAVAILABLE with a retry delay (default 256)",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="fsync every commit (survives power loss, not only a crash of the process; "
        "PostgreSQL: synchronous_commit = on for faultlens' sessions)",
    )
    parser.add_argument(
        "--no-redact", action="store_true", help="store messages without redacting secrets"
    )
    from faultlens_collector.causes.alerting import ALERT_WINDOW_SECONDS
    from faultlens_collector.causes.linking import CLOCK_SKEW_NANOS
    from faultlens_collector.causes.window import MAX_TRACES, SETTLE_SECONDS, WINDOW_SECONDS

    linking = parser.add_argument_group("root causes across services (docs/root-causes.md)")
    linking.add_argument(
        "--no-root-causes",
        action="store_true",
        help="do not link failure groups to the failures that caused them",
    )
    linking.add_argument(
        "--trace-settle",
        type=float,
        default=SETTLE_SECONDS,
        metavar="SECONDS",
        help="decide a trace once nothing new arrived for it this long; new groups' alerts "
        f"wait for it (default {SETTLE_SECONDS:g})",
    )
    linking.add_argument(
        "--trace-window",
        type=float,
        default=WINDOW_SECONDS,
        metavar="SECONDS",
        help="keep a trace this long after its first span, for spans arriving late "
        f"(default {WINDOW_SECONDS:g})",
    )
    linking.add_argument(
        "--max-traces",
        type=int,
        default=MAX_TRACES,
        metavar="N",
        help=f"traces held at most; the oldest is decided to make room (default {MAX_TRACES:,})",
    )
    linking.add_argument(
        "--clock-skew-ms",
        type=float,
        default=CLOCK_SKEW_NANOS / 1e6,
        metavar="MS",
        help=f"how far apart the services' clocks may be (default {CLOCK_SKEW_NANOS / 1e6:g})",
    )
    linking.add_argument(
        "--cascade-alert-window",
        type=float,
        default=ALERT_WINDOW_SECONDS,
        metavar="SECONDS",
        help="a root's cascade alert covers the new groups it takes down this long "
        f"(default {ALERT_WINDOW_SECONDS:g})",
    )
    parser.add_argument(
        "--console",
        metavar="HOST:PORT",
        help="also serve the web console here (needs faultlens[console]; HTTPS with --tls-cert)",
    )
    add_page_options(parser)
    parser.add_argument(
        "--no-heap-tuning",
        action="store_true",
        help="keep glibc's malloc defaults (by default request-sized buffers stay on the heap; "
        "see docs/processor.md)",
    )
    parser.set_defaults(handler=run)


def settings_from_args(args: argparse.Namespace, environ: Any = None) -> ProcessorSettings:
    """Validate the options into :class:`ProcessorSettings` (CommandError when wrong)."""
    from faultlens_collector.ingest.forward import ForwardSettings
    from faultlens_collector.processor.server import ProcessorSettings, TlsSettings

    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV) or None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as exc:
            raise CommandError(f"cannot read --token-file: {exc}") from exc
        if not token:
            raise CommandError(f"--token-file {args.token_file} is empty")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise CommandError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise CommandError("--tls-client-ca needs --tls-cert and --tls-key")
    for name in ("max_request_mib", "forward_queue_mib"):
        if getattr(args, name) <= 0:
            raise CommandError(f"--{name.replace('_', '-')} must be positive")
    if args.workers < 1:
        raise CommandError("--workers must be at least 1")
    if args.max_pending_requests < 1:
        raise CommandError("--max-pending-requests must be at least 1")
    forward = None
    if args.forward:
        try:
            parse_endpoint(args.forward)
        except ValueError as exc:
            raise CommandError(f"--forward: {exc}") from exc
        headers = []
        for header in args.forward_header:
            key, sep, value = header.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--forward-header {header!r}: expected KEY=VALUE")
            headers.append((key.strip().lower(), value.strip()))
        forward = ForwardSettings(
            target=args.forward,
            headers=tuple(headers),
            max_bytes=int(args.forward_queue_mib * 1024 * 1024),
        )
    actions = None
    if args.config is not None:
        from faultlens_collector.actions import ConfigError, load_config

        try:
            actions = load_config(args.config)
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
    if args.alerts is not None:
        if not args.alerts.strip():
            raise CommandError("--alerts needs HOST:PORT")
        try:
            parse_endpoint(args.alerts)
        except ValueError as exc:
            raise CommandError(f"--alerts: {exc}") from exc
    return ProcessorSettings(
        root_causes=root_cause_settings(args),
        store_path=args.store,
        listen=args.listen,
        max_request_bytes=int(args.max_request_mib * 1024 * 1024),
        token=token,
        tls=TlsSettings(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None,
        forward=forward,
        workers=args.workers,
        max_pending_requests=args.max_pending_requests,
        durable=args.durable,
        redact=not args.no_redact,
        actions=actions,
        alerts=args.alerts,
    )


def root_cause_settings(args: argparse.Namespace) -> RootCauseSettings | None:
    """The linking options (CommandError when wrong); None with ``--no-root-causes``."""
    from faultlens_collector.causes.listener import RootCauseSettings
    from faultlens_collector.causes.window import WindowSettings

    if args.no_root_causes:
        return None
    for name in ("trace_settle", "trace_window", "cascade_alert_window"):
        value = getattr(args, name)
        if not 0 < value < 1e9:
            raise CommandError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if args.trace_settle > args.trace_window:
        raise CommandError("--trace-settle cannot be longer than --trace-window")
    if args.max_traces < 1:
        raise CommandError("--max-traces must be at least 1")
    if not 0 <= args.clock_skew_ms < 1e6:
        raise CommandError("--clock-skew-ms must be between 0 and 1,000,000")
    return RootCauseSettings(
        WindowSettings(
            settle_seconds=args.trace_settle,
            window_seconds=args.trace_window,
            max_traces=args.max_traces,
            skew_nanos=int(args.clock_skew_ms * 1e6),
        ),
        alert_window_seconds=args.cascade_alert_window,
    )


def _console_settings(args: argparse.Namespace, settings: ProcessorSettings) -> Any:
    """The embedded console's settings (checked before the processor starts): the
    processor's token and, with TLS, its certificate for HTTPS and for the connection."""
    from faultlens_collector.cli.console import settings_from

    tls = settings.tls
    return settings_from(
        args,
        target="",
        listen=args.console,
        token=settings.token,
        ca_file=tls.certificate_file if tls else None,
        tls_cert=tls.certificate_file if tls else None,
        tls_key=tls.key_file if tls else None,
    )


def _local_target(processor: Processor) -> str:
    """How the embedded console reaches its own processor."""
    host, port = processor.address.rsplit(":", 1)
    if host in ("0.0.0.0", "[::]", "::", ""):
        host = "127.0.0.1"
    return f"{'https://' if processor.settings.tls else ''}{host}:{port}"


def run(args: argparse.Namespace) -> int:
    """Start the processor and serve until interrupted."""
    from faultlens_collector.processor.heap import keep_request_buffers
    from faultlens_collector.processor.selftelemetry import self_meter_provider
    from faultlens_collector.processor.server import Processor, ProcessorError

    settings = settings_from_args(args)
    console_settings = _console_settings(args, settings) if args.console else None
    if not args.no_heap_tuning:
        keep_request_buffers()
    try:
        meter_provider = self_meter_provider()
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    processor = Processor(settings, meter_provider=meter_provider)
    try:
        processor.start()
    except ProcessorError as exc:
        raise CommandError(str(exc), exit_code=1) from exc
    console = None
    if console_settings is not None:
        from faultlens_collector.cli.console import start_console

        try:
            console = start_console(replace(console_settings, target=_local_target(processor)))
        except CommandError:
            processor.stop()
            raise
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    alerts = processor.engine.alerts_target if processor.engine else None
    # The database's own name for itself: a PostgreSQL URL without its password.
    store = processor.database.location if processor.database else settings.store_path
    print(
        f"faultlens: listening on {processor.address}, store {store}"
        + (f", forwarding to {settings.forward.target}" if settings.forward else "")
        + (f", config {settings.actions.source}" if settings.actions else "")
        + (f", alerts to {alerts}" if alerts else "")
        + (f", console on {console.url}" if console is not None else ""),
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("faultlens: stopping", file=sys.stderr, flush=True)
        if console is not None:
            console.stop()
        processor.stop()
        if meter_provider is not None:
            meter_provider.shutdown()
    return 0
