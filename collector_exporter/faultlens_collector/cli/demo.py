"""``faultlens demo``: the main job, with nothing installed beyond the package."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from faultlens_collector.cli import CommandError
from faultlens_collector.cli.console import add_page_options
from faultlens_collector.cli.table import render_table
from faultlens_collector.groups.model import primary_service
from faultlens_collector.report import group_json


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run a sample app through the whole faultlens pipeline and show the failure groups",
        description=(
            "Start a faultlens processor on a free loopback port with a temporary store, a "
            "few rules and an OTLP log receiver for its alerts; run a small order-processing "
            "worker that fails the ways real services fail (timeouts swallowed and logged, "
            "escaped lookups, a full disk, an error storm, a forgotten asyncio task, a dying "
            "thread) with the OpenTelemetry SDK and the faultlens exporter; watch a fix hook "
            "run and get verified and a halt stop a failing payment loop; print it all."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the groups as JSON only")
    parser.add_argument(
        "--console",
        metavar="HOST:PORT",
        help="then serve the web console for the demo's processor here until Ctrl-C "
        "(needs faultlens[console]), e.g. 127.0.0.1:8080",
    )
    add_page_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its report (then serve the console, with ``--console``)."""
    from faultlens_collector.demo.pipeline import run_pipeline_demo

    if not args.console:
        _print(args, run_pipeline_demo())
        return 0
    from faultlens_collector.cli.console import settings_from, start_console, wait_for_signal
    from faultlens_collector.console import ConsoleSetupError, require_dependencies

    try:
        require_dependencies()
    except ConsoleSetupError as exc:
        raise CommandError(str(exc), exit_code=1) from exc
    settings = settings_from(args, target="", listen=args.console)

    def serve_console(result: Any, processor: Any) -> None:
        _print(args, result)
        server = start_console(replace(settings, target=processor.address))
        print(
            f"\nThe web console for this demo: {server.url} (Ctrl-C to stop)",
            file=sys.stderr if args.json else sys.stdout,
            flush=True,
        )
        try:
            wait_for_signal()
        finally:
            server.stop()

    run_pipeline_demo(after=serve_console)
    return 0


def _print(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        print(json.dumps(_as_json(result), indent=2))
        return
    outcome = result.outcome
    print(
        f"sample worker: {outcome.orders} orders, {outcome.fallbacks} silent fallbacks, "
        f"{outcome.escaped} escaped errors, {outcome.storm_failures} malformed records\n"
        f"processor: {result.address} (embedded, temporary store); "
        "the app exported through the faultlens exporter\n"
    )
    rows = [
        (
            group.fingerprint,
            group.count,
            group.category,
            group.severity,
            _outcome(group),
            primary_service(group.service_counts),
            group.exception_type,
            group.message,
        )
        for group in result.groups
    ]
    headers = ("fingerprint", "count", "category", "severity", "outcome", "service", "type")
    print(render_table((*headers, "message"), rows, max_width=48))
    total = sum(group.count for group in result.groups)
    print(f"\n{total} failures in {len(result.groups)} groups.")
    print("\n" + "\n".join(_acting(result)))
    print(
        "\nAgainst a running processor (faultlens serve --config FILE --alerts HOST:PORT) the "
        "same views are: faultlens failures list; faultlens failures show FINGERPRINT "
        "--trace-url 'http://localhost:16686/trace/{trace_id}'; faultlens audit --hooks; "
        "faultlens halts list; faultlens halts resume ID."
    )


def _acting(result: Any) -> list[str]:
    lines = ["fix hook restart-pricing (rule pricing-timeouts):"]
    for run in result.fix_runs:
        output = " ".join(run.output_tail.split())
        lines.append(
            f"  ran on group {run.fingerprint}: {run.outcome} in {run.duration:.2f} s"
            + (f" — {output}" if output else "")
        )
    record = result.fix_record
    if record is not None:
        lines.append(
            f"  fixes verified: {record.verified} of {record.samples} decided, "
            f"{record.pending} pending (a fix is verified when its group stays quiet for "
            "the verification window)"
        )
    payments = result.payments
    lines.append(
        f"halt rule card-processor-down (3 consecutive failures of charge-card): "
        f"{payments.failed} charges failed, then {payments.refused} calls refused by the "
        "worker's fleet-wide halt guard"
    )
    for halt in result.halts:
        key = ", ".join(f"{name}={value}" for name, value in halt.key)
        lines.append(f"  halt {halt.id} in force: {key} — {halt.reason}")
    kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(_kinds(result).items()))
    lines.append(f"alerts received by the OTLP log receiver: {kinds or 'none'}")
    return lines


def _kinds(result: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in result.alerts:
        counts[alert.kind] = counts.get(alert.kind, 0) + 1
    return counts


def _as_json(result: Any) -> dict[str, Any]:
    record = result.fix_record
    return {
        "groups": [group_json(group) for group in result.groups],
        "fix_runs": [run.as_json() for run in result.fix_runs],
        "fix_record": None
        if record is None
        else {"verified": record.verified, "decided": record.samples, "pending": record.pending},
        "payments": {
            "attempts": result.payments.attempts,
            "failed": result.payments.failed,
            "refused": result.payments.refused,
        },
        "halts": [halt.as_json() for halt in result.halts],
        "alerts": [
            {"kind": alert.kind, "body": alert.body, "attributes": alert.attributes}
            for alert in result.alerts
        ],
    }


def _outcome(group: Any) -> str:
    if group.handled_count == group.count:
        return "handled"
    if group.handled_count == 0:
        return "escaped"
    return f"{group.handled_count} handled"
