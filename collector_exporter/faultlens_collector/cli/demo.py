"""``faultlens demo``: the main job, with nothing installed beyond the package."""

from __future__ import annotations

import argparse
import json
from typing import Any

from faultlens_collector.cli.table import render_table
from faultlens_collector.report import group_json, primary_service


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run a sample app through the whole faultlens pipeline and show the failure groups",
        description=(
            "Start a faultlens processor on a free loopback port with a temporary store, run "
            "a small order-processing worker that fails the ways real services fail (timeouts "
            "swallowed and logged, escaped lookups, a full disk, an error storm, a forgotten "
            "asyncio task, a dying thread) with the OpenTelemetry SDK and the faultlens "
            "exporter, and print the failure groups the processor built."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the groups as JSON only")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its report."""
    from faultlens_collector.demo.pipeline import run_pipeline_demo

    result = run_pipeline_demo()
    if args.json:
        print(json.dumps([group_json(group) for group in result.groups], indent=2))
        return 0
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
    print(
        f"\n{total} failures in {len(result.groups)} groups. Against a running processor "
        "(faultlens serve) the same view is: faultlens failures list; details and trace "
        "links: faultlens failures show FINGERPRINT --trace-url "
        "'http://localhost:16686/trace/{trace_id}'"
    )
    return 0


def _outcome(group: Any) -> str:
    if group.handled_count == group.count:
        return "handled"
    if group.handled_count == 0:
        return "escaped"
    return f"{group.handled_count} handled"
