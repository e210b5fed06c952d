"""``faultlens audit``: what operators did (default), what hooks ran (``--hooks``), and how
well each hook fixes (``--effectiveness``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.cli.connect import add_connection_options, call, connect
from faultlens_collector.cli.table import duration, percent, render_table
from faultlens_collector.control.messages import hook_run_json, operator_action_json
from faultlens_collector.control.methods import MAX_LIMIT


def register(subparsers: Any) -> None:
    """Add ``audit``."""
    parser = subparsers.add_parser(
        "audit",
        help="the operator log (who did what to which groups and halts), hook runs, "
        "hook effectiveness",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--hooks", action="store_true", help="hook executions instead")
    mode.add_argument(
        "--effectiveness", action="store_true", help="each hook's recent fix success rate"
    )
    parser.add_argument("--fingerprint", help="only what touched this group")
    parser.add_argument("--action", help="operator log: only this action (dismiss, fix, …)")
    parser.add_argument("--hook", help="--hooks: only this hook")
    parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    parser.add_argument("--json", action="store_true", help="print JSON only (one array)")
    add_connection_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the chosen record."""
    limit = min(max(args.limit, 1), MAX_LIMIT)
    with connect(args) as client:
        if args.effectiveness:
            reply = call(client.call, "GetEffectiveness", control_pb2.GetEffectivenessRequest())
            return _effectiveness(reply.hooks, args.json)
        if args.hooks:
            request = control_pb2.ListHookRunsRequest(
                limit=limit, fingerprint=args.fingerprint or "", hook=args.hook or ""
            )
            runs = [hook_run_json(run) for run in call(client.call, "ListHookRuns", request).runs]
            return _print(
                runs,
                args.json,
                ("started_at", "hook", "purpose", "rule", "fingerprint", "outcome", "detail"),
                "no hook runs",
            )
        audit = control_pb2.ListAuditRequest(
            limit=limit, fingerprint=args.fingerprint or "", action=args.action or ""
        )
        actions = [
            operator_action_json(action) for action in call(client.call, "ListAudit", audit).actions
        ]
    if not args.json:
        for action in actions:
            action["detail"] = json.dumps(action["detail"], sort_keys=True)
    return _print(
        actions,
        args.json,
        ("id", "at", "actor", "peer", "action", "count", "detail"),
        "no operator actions",
    )


def _print(rows: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...], empty: str) -> int:
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(empty)
    else:
        print(render_table(columns, [[row[column] for column in columns] for row in rows]))
    return 0


def _effectiveness(hooks: Any, as_json: bool) -> int:
    rows = [
        {
            "hook": hook.hook,
            "samples": hook.samples,
            "verified": hook.verified,
            "success_rate": hook.success_rate if hook.has_success_rate else None,
            "mean_duration": hook.mean_duration_seconds if hook.has_success_rate else None,
            "pending": hook.pending,
            "level": hook.level,
        }
        for hook in hooks
    ]
    if not as_json:  # for people: a percentage and seconds; --json keeps full precision
        for row in rows:
            row["success_rate"] = percent(row["success_rate"])
            row["mean_duration"] = duration(row["mean_duration"])
    return _print(
        rows,
        as_json,
        ("hook", "samples", "verified", "success_rate", "mean_duration", "pending", "level"),
        "no hooks configured",
    )
