"""``faultlens failures dismiss|categorize|resolve|reopen|fix``: bulk triage.

Each takes fingerprints and/or the filters of ``failures list`` (an empty
selection needs ``--all``), acts on every selected group in one call, and
prints how many groups it changed — or, with ``--dry-run``, how many it would.
``--actor`` (default ``$FAULTLENS_ACTOR`` or the login name) is written to the
processor's operator log with the action (``faultlens audit``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Final

from faultlens import semconv

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.cli import CommandError
from faultlens_collector.cli.connect import (
    add_actor_option,
    add_connection_options,
    call,
    connect,
    parse_until,
    positive_int,
)
from faultlens_collector.cli.selection import add_selection, selection

#: Subcommand → (RPC, past tense, help).
_COMMANDS: Final = {
    "dismiss": ("Dismiss", "dismissed", "dismiss groups (with a reason; until a time or a rate)"),
    "categorize": (
        "Categorize",
        "categorized",
        "set category, severity (both then kept) and tags of groups",
    ),
    "resolve": (
        "Resolve",
        "resolved",
        "mark groups resolved (they become regressed when they occur again)",
    ),
    "reopen": ("Reopen", "reopened", "mark groups open again (ends a dismissal or resolution)"),
    "fix": ("Fix", "queued a fix for", "run a configured fix hook for each selected group"),
}


def register(commands: Any) -> None:
    """Add the bulk subcommands under ``failures``."""
    for name, (_, _, text) in _COMMANDS.items():
        parser = commands.add_parser(name, help=text, description=text)
        add_selection(parser)
        if name == "dismiss":
            parser.add_argument("--reason", required=True, help="why (kept with the group)")
            parser.add_argument(
                "--until", help="open again at: 2h, 7d (from now) or an ISO date/time (UTC)"
            )
            parser.add_argument(
                "--reopen-above",
                type=positive_int,
                metavar="N",
                help="open again as soon as more than N occurrences fall within an hour",
            )
        elif name == "categorize":
            parser.add_argument("--set-category", metavar="CATEGORY")
            parser.add_argument("--set-severity", choices=semconv.SEVERITIES, metavar="SEVERITY")
            parser.add_argument("--add-tag", action="append", default=[], metavar="TAG")
            parser.add_argument("--remove-tag", action="append", default=[], metavar="TAG")
        elif name == "fix":
            parser.add_argument("--hook", required=True, help="a hook of the processor's config")
        else:
            parser.add_argument("--reason", default="", help="why (for the operator log)")
        parser.add_argument("--json", action="store_true", help="print the reply as JSON")
        add_actor_option(parser)
        add_connection_options(parser)
        parser.set_defaults(handler=run, triage_command=name)


def build_request(args: argparse.Namespace) -> Any:
    """The request message of the subcommand ``args`` describe."""
    common = {"selection": selection(args), "actor": args.actor, "dry_run": args.dry_run}
    name = args.triage_command
    if name == "dismiss":
        return control_pb2.DismissRequest(
            reason=args.reason,
            until_unix_nano=parse_until(args.until) if args.until else 0,
            reopen_above_per_hour=args.reopen_above or 0,
            **common,
        )
    if name == "categorize":
        if not (args.set_category or args.set_severity or args.add_tag or args.remove_tag):
            raise CommandError("give --set-category, --set-severity, --add-tag or --remove-tag")
        return control_pb2.CategorizeRequest(
            category=args.set_category or "",
            severity=args.set_severity or "",
            add_tags=args.add_tag,
            remove_tags=args.remove_tag,
            **common,
        )
    if name == "fix":
        return control_pb2.FixRequest(hook=args.hook, **common)
    return control_pb2.SetStatusRequest(reason=args.reason, **common)


def run(args: argparse.Namespace) -> int:
    """Send the bulk request and print what it did."""
    rpc, done, _ = _COMMANDS[args.triage_command]
    request = build_request(args)
    with connect(args) as client:
        reply = call(client.call, rpc, request)
    if args.json:
        print(
            json.dumps(
                {
                    "matched": reply.matched,
                    "dry_run": reply.dry_run,
                    "action_id": reply.action_id,
                    **({"queued": reply.queued, "dropped": reply.dropped} if rpc == "Fix" else {}),
                }
            )
        )
        return 0
    groups = f"{reply.matched} failure group{'' if reply.matched == 1 else 's'}"
    if reply.dry_run:
        print(f"would {args.triage_command} {groups}")
        return 0
    line = f"{done} {groups} (operator log #{reply.action_id})"
    if rpc == "Fix":
        line += f": {reply.queued} queued"
        if reply.dropped:
            line += f", {reply.dropped} dropped (the hook queue was full)"
    print(line)
    return 0
