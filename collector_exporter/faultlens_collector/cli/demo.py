"""``faultlens demo``: the main job, with nothing installed beyond the package."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from faultlens_collector.cli.table import render_table


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run a sample program with real failures and show what faultlens captured",
        description=(
            "Run a small order-processing worker that fails the ways real services fail "
            "(timeouts swallowed and logged, escaped lookups, a full disk, an error storm, "
            "a forgotten asyncio task, a dying thread) and print the failures faultlens "
            "captured, grouped by fingerprint."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the groups as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its report."""
    from faultlens_collector.demo.local import run_local_demo

    result = run_local_demo()
    if args.json:
        payload = [{**asdict(group), "spans": sorted(group.spans)} for group in result.groups]
        print(json.dumps(payload, indent=2))
        return 0
    outcome = result.outcome
    total = sum(group.count for group in result.groups)
    events = sum(group.events for group in result.groups)
    print(
        f"sample worker: {outcome.orders} orders, {outcome.fallbacks} silent fallbacks, "
        f"{outcome.escaped} escaped errors, {outcome.storm_failures} malformed records\n"
    )
    rows = [
        (
            group.fingerprint,
            group.count,
            group.category,
            group.severity,
            "handled" if group.handled else "escaped",
            group.source,
            group.exception_type,
            group.message,
        )
        for group in result.groups
    ]
    print(
        render_table(
            (
                "fingerprint",
                "count",
                "category",
                "severity",
                "outcome",
                "source",
                "type",
                "message",
            ),
            rows,
            max_width=48,
        )
    )
    print(
        f"\n{total} failures in {len(result.groups)} groups, carried by {events} span events "
        f"on {len(result.spans)} spans (repeats aggregated: failure.count keeps the total exact)."
    )
    return 0
