"""``faultlens failures list|show|export``: read failure groups from a processor.

The bulk subcommands (dismiss, categorize, resolve, reopen, fix) are in
:mod:`faultlens_collector.cli.failures_bulk`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Final, TextIO

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.causes.links import fold
from faultlens_collector.cli import CommandError, failures_bulk
from faultlens_collector.cli.connect import add_connection_options, call, connect, positive_int
from faultlens_collector.cli.selection import add_group_filters, group_filter
from faultlens_collector.cli.table import duration, render_table
from faultlens_collector.groups.model import primary_service
from faultlens_collector.report import TRACE_URL_ENV, group_json, iso_time

SORT_KEYS: Final = {
    "last_seen": control_pb2.SORT_KEY_LAST_SEEN,
    "first_seen": control_pb2.SORT_KEY_FIRST_SEEN,
    "count": control_pb2.SORT_KEY_COUNT,
    "severity": control_pb2.SORT_KEY_SEVERITY,
}


def register(subparsers: Any) -> None:
    """Add ``failures`` and its subcommands."""
    parser = subparsers.add_parser(
        "failures",
        help="list, show, export and triage (dismiss, categorize, resolve, fix) failure groups",
    )
    commands = parser.add_subparsers(dest="failures_command", metavar="SUBCOMMAND")
    commands.required = True

    listing = commands.add_parser("list", help="list failure groups, most recent first")
    _add_filters(listing)
    listing.add_argument(
        "--limit", type=positive_int, default=50, help="at most this many groups (default 50)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON only (one array)")
    listing.add_argument(
        "--flat",
        action="store_true",
        help="one row per group, in order (by default a group marked as the symptom of "
        "another listed group is folded under its root)",
    )
    add_connection_options(listing)
    listing.set_defaults(handler=run_list)

    show = commands.add_parser("show", help="everything about one failure group")
    show.add_argument("fingerprint", help="fingerprint, or a unique prefix of it (4+ characters)")
    show.add_argument("--json", action="store_true", help="print JSON only (one object)")
    _add_trace_url(show)
    add_connection_options(show)
    show.set_defaults(handler=run_show)

    export = commands.add_parser(
        "export", help="every matching group in full, as a report for people or agents"
    )
    _add_filters(export)
    export.add_argument(
        "--format", choices=("json", "jsonl"), default="json", help="json (array) or jsonl"
    )
    export.add_argument(
        "--json",
        action="store_const",
        const="json",
        dest="format",
        help="the same as --format json (the default): JSON only",
    )
    export.add_argument("--output", "-o", type=Path, help="write here instead of stdout")
    _add_trace_url(export)
    add_connection_options(export)
    export.set_defaults(handler=run_export)
    failures_bulk.register(commands)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    add_group_filters(parser)
    parser.add_argument(
        "--sort", choices=tuple(SORT_KEYS), default="last_seen", help="default last_seen"
    )
    parser.add_argument("--asc", action="store_true", help="ascending order (default descending)")


def _add_trace_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace-url",
        default=os.environ.get(TRACE_URL_ENV),
        metavar="TEMPLATE",
        help=(
            "link template for sample traces, e.g. http://jaeger:16686/trace/{trace_id} "
            f"(default ${TRACE_URL_ENV})"
        ),
    )


def run_list(args: argparse.Namespace) -> int:
    """``failures list``: pages through ListGroups until ``--limit`` groups."""
    groups: list[Any] = []
    total = 0
    token = ""
    with connect(args) as client:
        while len(groups) < args.limit:
            request = control_pb2.ListGroupsRequest(
                filter=group_filter(args),
                sort=SORT_KEYS[args.sort],
                ascending=args.asc,
                limit=min(args.limit - len(groups), 1000),
                page_token=token,
            )
            page = call(client.list_groups, request)
            groups.extend(page.groups)
            total = page.total
            token = page.next_page_token
            if not token:
                break
    folded = _folded(groups, flat=args.flat)
    if args.json:
        print(json.dumps([group_json(group) for group, _ in folded], indent=2))
        return 0
    if not groups:
        print("no failure groups match")
        return 0
    rows = [
        (
            ("  └ " if symptom else "") + group.fingerprint,
            group.status,
            group.count,
            group.severity,
            group.category,
            group.pattern,
            primary_service(group.service_counts),
            iso_time(group.last_seen_unix_nano) or "",
            group.exception_type,
            group.message,
        )
        for group, symptom in folded
    ]
    headers = (
        "fingerprint",
        "status",
        "count",
        "severity",
        "category",
        "pattern",
        "service",
        "last seen (UTC)",
        "type",
        "message",
    )
    print(render_table(headers, rows, max_width=48))
    symptoms = sum(1 for _, symptom in folded if symptom)
    note = f" ({symptoms} folded under their root cause; --flat to unfold)" if symptoms else ""
    print(f"\n{len(groups)} of {total} groups{note}")
    return 0


def _folded(groups: list[Any], *, flat: bool) -> list[tuple[Any, bool]]:
    """The groups in order, each symptom right after its root when both are listed
    (``(group, is a folded symptom)``); unchanged with ``flat``."""
    if flat:
        return [(group, False) for group in groups]
    by_fingerprint = {group.fingerprint: group for group in groups}
    order = fold(
        [group.fingerprint for group in groups],
        {group.fingerprint: group.root_fingerprint for group in groups if group.root_fingerprint},
    )
    return [
        (by_fingerprint[fingerprint], symptom)
        for root, symptoms in order
        for fingerprint, symptom in ((root, False), *((item, True) for item in symptoms))
    ]


def run_show(args: argparse.Namespace) -> int:
    """``failures show FINGERPRINT``."""
    with connect(args) as client:
        group = call(client.get_group, args.fingerprint)
    data = group_json(group, detailed=True, trace_url_template=args.trace_url)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(_describe(data))
    return 0


def _describe(data: dict[str, Any]) -> str:
    lines = [
        f"{data['exception_type']}: {data['message']}",
        "",
        f"fingerprint  {data['fingerprint']}",
        f"status       {data['status']}",
        f"category     {data['category']}",
        f"severity     {data['severity']}",
        f"count        {data['count']} ({data['handled_count']} handled)",
        f"first seen   {data['first_seen']}",
        f"last seen    {data['last_seen']}",
        "services     "
        + ", ".join(f"{name} ({count})" for name, count in data["services"].items()),
        "spans        " + ", ".join(data["span_names"]),
    ]
    if data["tags"]:
        lines.append("tags         " + ", ".join(data["tags"]))
    if data["pattern"]:
        lines.append(f"pattern      {data['pattern']}")
    if data["root_fingerprint"]:
        lines.append(f"symptom of   {data['root_fingerprint']} (its root cause)")
    for label, key in (("caused by", "caused_by"), ("causes", "causes")):
        for index, link in enumerate(data[key]):
            lines.append(
                f"{label if index == 0 else '':<12} {link['fingerprint']}  "
                f"{link['share']:.0%} of the symptom's occurrences, "
                f"{link['traces']} trace{'s' if link['traces'] != 1 else ''}, "
                f"last {link['last_seen']}"
            )
    dismissal = data["dismissal"]
    if dismissal:
        terms = [f"by {dismissal['by']} at {dismissal['at']}"]
        if dismissal["until"]:
            terms.append(f"until {dismissal['until']}")
        if dismissal["reopen_above_per_hour"]:
            terms.append(f"reopens above {dismissal['reopen_above_per_hour']}/h")
        lines.append(f"dismissed    {dismissal['reason']} ({', '.join(terms)})")
    if data["hook_runs"]:
        lines.append("hook runs (newest first)")
        lines.extend(f"  {_hook_run_line(run)}" for run in data["hook_runs"])
    if data["samples"]:
        lines.append("samples")
        for sample in data["samples"]:
            where = sample["url"] or f"trace {sample['trace_id']} span {sample['span_id']}"
            lines.append(f"  {sample['time']}  {sample['service']}  {where}")
    if data["stacktrace"]:
        lines.extend(["", data["stacktrace"].rstrip()])
    return "\n".join(lines)


def _hook_run_line(run: dict[str, Any]) -> str:
    """``<started>  <hook>  <purpose> (rule …)  <outcome> in <duration>  <verification>``."""
    why = f"rule {run['rule']}" if run["rule"] else f"by {run['requested_by'] or '?'}"
    line = (
        f"{run['started_at']}  {run['hook']}  {run['purpose']} ({why})  "
        f"{run['outcome']} in {duration(run['duration'])}"
    )
    verification = run["verification"]
    if verification is None:
        return line
    if verification["state"] == "pending":
        return f"{line}  fix pending: verified at {verification['deadline']} if it stays quiet"
    return (
        f"{line}  fix {verification['state']} at {verification['decided_at']}"
        f" ({verification['reason']})"
    )


def run_export(args: argparse.Namespace) -> int:
    """``failures export``: streams ExportGroups into JSON or JSON Lines."""
    request = control_pb2.ExportGroupsRequest(
        filter=group_filter(args), sort=SORT_KEYS[args.sort], ascending=args.asc
    )
    try:
        output: TextIO = args.output.open("w") if args.output else sys.stdout
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc}") from exc
    try:
        with connect(args) as client:
            written = call(_write_export, client, request, output, args)
    finally:
        if args.output:
            output.close()
    if args.output:
        print(f"wrote {written} failure groups to {args.output}", file=sys.stderr)
    return 0


def _write_export(client: Any, request: Any, output: TextIO, args: argparse.Namespace) -> int:
    written = 0
    if args.format == "json":
        output.write("[")
    for group in client.export_groups(request):
        data = group_json(group, detailed=True, trace_url_template=args.trace_url)
        if args.format == "json":
            output.write(("," if written else "") + "\n  " + json.dumps(data))
        else:
            output.write(json.dumps(data) + "\n")
        written += 1
    if args.format == "json":
        output.write("\n]\n" if written else "]\n")
    return written
