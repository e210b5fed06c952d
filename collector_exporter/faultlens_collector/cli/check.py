"""``faultlens check``: a self-test of a running processor, one line per step.

::

    $ faultlens check --target 127.0.0.1:4317
    ok    health     SERVING (grpc.health.v1)
    ok    control    check 3f2a… opened
    ok    ingest     synthetic failure sent over OTLP (trace 5b8c…)
    ok    grouping   grouped as 91c0e5d2a4b7f6e1 (1 occurrence, category dependency)
    ok    rules      rule db-timeouts matches; hook restart-pool would run (runs /opt/restart)
    ok    alerts     collector:4317 answered; the failure would raise new_failure
    ok    cleanup    synthetic group removed; operator log entry 42 (action check)

Exit status 0 when every step passed, 1 when one failed (the steps after it that
still make sense run, and the cleanup always does), 2 for usage errors. With
``--json`` nothing is printed until the end, then one JSON object: ``ok`` and the
``steps`` (``step``, ``status`` ``ok``/``skip``/``failed``, ``detail``). The
synthetic failure is sent with the official OTLP exporter, with the same
``--token`` and TLS options as every client command; ``--service``,
``--category``, ``--severity``, ``--exception-type`` and ``--span-name`` shape it
like the failures a rule is meant for, so that rule's hooks are dry-run.
Nothing runs, halts or alerts because of it, and after the check the processor
holds nothing of it but the operator-log entry (see docs/processor.md).
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from typing import Any, Final

import grpc

from faultlens_collector.cli import CommandError
from faultlens_collector.cli.connect import add_actor_option, add_connection_options, connect

DEFAULT_SERVICE: Final = "faultlens-check"
CHECK_ATTRIBUTE: Final = "faultlens.check.id"
GROUPING_TIMEOUT: Final = 15.0
SELF_CHECK: Final = "faultlens.v1.SelfCheck"


class SyntheticFailure(Exception):
    """The failure ``faultlens check`` sends (never raised outside it)."""


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand."""
    parser = subparsers.add_parser(
        "check",
        help="self-test a running processor: health, ingest, grouping, rules, alerts",
        description=(
            "Send a marked synthetic failure over OTLP and confirm the processor grouped it, "
            "which rules match it and whether their fix hooks would run (dry run: nothing "
            "runs), and that the alert target answers; then remove it. One line per step; "
            "exit status 0 when all passed, 1 when one failed."
        ),
    )
    add_connection_options(parser)
    add_actor_option(parser)
    shape = parser.add_argument_group("the synthetic failure (to match a given rule)")
    shape.add_argument("--service", default=DEFAULT_SERVICE, help="service.name")
    shape.add_argument("--category", default="dependency", help="failure.category")
    shape.add_argument("--severity", default="high", choices=("low", "medium", "high", "critical"))
    shape.add_argument(
        "--exception-type",
        default=f"{__name__}.{SyntheticFailure.__name__}",
        metavar="TYPE",
        help="exception.type",
    )
    shape.add_argument("--span-name", default="faultlens.check", metavar="NAME")
    parser.add_argument(
        "--timeout",
        type=float,
        default=GROUPING_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for each step (default {GROUPING_TIMEOUT:g})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object at the end (ok, steps) and nothing else",
    )
    parser.set_defaults(handler=run)


class _Steps:
    """Prints one line per step (or, ``as_json``, keeps them for :meth:`print_json`) and
    remembers whether any failed."""

    def __init__(self, *, as_json: bool = False) -> None:
        self.failed = False
        self.as_json = as_json
        self.steps: list[dict[str, str]] = []

    def line(self, ok: bool | None, step: str, text: str) -> None:
        mark = "ok" if ok else ("skip" if ok is None else "FAIL")
        self.failed = self.failed or ok is False
        if self.as_json:
            status = {"ok": "ok", "skip": "skip", "FAIL": "failed"}[mark]
            self.steps.append({"step": step, "status": status, "detail": text})
        else:
            print(f"{mark:<5} {step:<10} {text}", flush=True)

    def print_json(self) -> None:
        """The one JSON object of ``--json`` (nothing without it)."""
        if self.as_json:
            print(json.dumps({"ok": not self.failed, "steps": self.steps}, indent=2))


def run(args: argparse.Namespace) -> int:
    """Run the steps against ``args.target``."""
    if args.timeout <= 0:
        raise CommandError("--timeout must be positive")
    steps = _Steps(as_json=args.json)
    code = _run_steps(args, steps)
    steps.print_json()
    return code


def _run_steps(args: argparse.Namespace, steps: _Steps) -> int:
    from faultlens_collector._proto.faultlens.v1 import check_pb2

    client = connect(args)
    try:
        if not _health(client, steps, args.timeout):
            return 1
        try:
            ticket = client.call_method(
                f"/{SELF_CHECK}/Begin",
                check_pb2.BeginCheckRequest(actor=args.actor),
                check_pb2.CheckTicket,
            )
        except Exception as exc:
            steps.line(False, "control", str(exc))
            return 1
        steps.line(True, "control", f"check {ticket.id} opened")
        try:
            _send(args, ticket, steps)
            if not steps.failed:
                _grouped(client, ticket.fingerprint, steps, args.timeout)
        finally:
            _end(client, ticket.id, args.actor, steps)
    finally:
        client.close()
    return 1 if steps.failed else 0


def _health(client: Any, steps: _Steps, timeout: float) -> bool:
    from grpc_health.v1 import health_pb2

    try:
        reply = client.call_method(
            "/grpc.health.v1.Health/Check",
            health_pb2.HealthCheckRequest(service=""),
            health_pb2.HealthCheckResponse,
            timeout=timeout,
        )
    except Exception as exc:
        steps.line(False, "health", str(exc))
        return False
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    steps.line(
        serving,
        "health",
        f"{name} (grpc.health.v1)" + ("" if serving else ": the store cannot commit"),
    )
    return True


def _send(args: argparse.Namespace, ticket: Any, steps: _Steps) -> None:
    """Send the synthetic failure with the official OTLP span exporter."""
    from faultlens import semconv
    from faultlens.shared import parse_endpoint
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult

    address, secure = parse_endpoint(args.target)
    credentials = None
    if secure or args.tls_ca is not None:
        root = args.tls_ca.read_bytes() if args.tls_ca is not None else None
        credentials = grpc.ssl_channel_credentials(root_certificates=root)
    exporter = OTLPSpanExporter(
        endpoint=address,
        insecure=credentials is None,
        credentials=credentials,
        headers=(("authorization", f"Bearer {args.token}"),) if args.token else None,
        timeout=int(args.timeout),
    )
    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    span = provider.get_tracer("faultlens.check").start_span(args.span_name)
    try:
        raise SyntheticFailure(f"faultlens check {ticket.id}: a synthetic failure")
    except SyntheticFailure as exc:
        span.add_event(
            semconv.EXCEPTION_EVENT_NAME,
            {
                semconv.EXCEPTION_TYPE: args.exception_type,
                semconv.EXCEPTION_MESSAGE: str(exc),
                semconv.EXCEPTION_STACKTRACE: "".join(traceback.format_exception(exc)),
                semconv.FAILURE_CATEGORY: args.category,
                semconv.FAILURE_SEVERITY: args.severity,
                semconv.FAILURE_FINGERPRINT: ticket.fingerprint,
                semconv.FAILURE_HANDLED: True,
                semconv.FAILURE_SOURCE: "manual",
                semconv.FAILURE_COUNT: 1,
                CHECK_ATTRIBUTE: ticket.id,
            },
        )
    span.end()
    try:
        result = exporter.export([span])  # type: ignore[list-item]
    finally:
        exporter.shutdown()
        provider.shutdown()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    if result == SpanExportResult.SUCCESS:
        steps.line(True, "ingest", f"synthetic failure sent over OTLP (trace {trace_id})")
    else:
        steps.line(False, "ingest", f"the OTLP export to {args.target} failed")


def _grouped(client: Any, fingerprint: str, steps: _Steps, timeout: float) -> None:
    from faultlens_collector.control.client import ControlError

    started = time.monotonic()
    while True:
        try:
            group = client.get_group(fingerprint)
            break
        except ControlError as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND or time.monotonic() - started > timeout:
                steps.line(False, "grouping", f"no group for the synthetic failure: {exc}")
                return
            time.sleep(0.05)
    plural = "" if group.count == 1 else "s"
    steps.line(
        True,
        "grouping",
        f"grouped as {group.fingerprint} ({group.count} occurrence{plural}, category "
        f"{group.category}) in {time.monotonic() - started:.2f} s",
    )


def _end(client: Any, check_id: str, actor: str, steps: _Steps) -> None:
    from faultlens_collector._proto.faultlens.v1 import check_pb2

    try:
        report = client.call_method(
            f"/{SELF_CHECK}/End",
            check_pb2.EndCheckRequest(id=check_id, actor=actor),
            check_pb2.CheckReport,
        )
    except Exception as exc:
        steps.line(False, "cleanup", f"could not end the check: {exc}")
        return
    if report.grouped:
        _rules(report, steps)
        _alerts(report, steps)
    if report.removed:
        steps.line(
            True,
            "cleanup",
            ("synthetic group removed" if report.grouped else "nothing to remove")
            + f"; operator log entry {report.action_id} (action check)",
        )
    else:
        steps.line(False, "cleanup", "the synthetic group could not be removed")


def _rules(report: Any, steps: _Steps) -> None:
    if not report.rules:
        steps.line(
            None,
            "rules",
            "no rule matches the synthetic failure (shape it with --service, --category, "
            "--severity, --exception-type, --span-name)",
        )
        return
    parts = [f"rule{'s' if len(report.rules) > 1 else ''} {', '.join(report.rules)} match"]
    ok = True
    for hook in report.hooks:
        verdict = "would run" if hook.would_run else "would NOT run"
        ok = ok and hook.would_run
        parts.append(f"hook {hook.hook} ({hook.rule}) {verdict}: {hook.detail}")
    if not report.hooks:
        parts.append("no fix hooks")
    steps.line(ok, "rules", "; ".join(parts) + " (dry run)")


def _alerts(report: Any, steps: _Steps) -> None:
    kinds = ", ".join(report.alert_kinds) or "no alert"
    if not report.alert_target:
        steps.line(True, "alerts", f"{report.alert_detail}; the failure would raise {kinds}")
    elif report.alert_target_answered:
        steps.line(
            True, "alerts", f"{report.alert_target} answered; the failure would raise {kinds}"
        )
    else:
        steps.line(False, "alerts", f"{report.alert_target} did not answer: {report.alert_detail}")
