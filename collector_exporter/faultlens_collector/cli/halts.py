"""``faultlens halts list|resume|start|watch``: the processor's halts.

A halt stops work for every key that contains all of its key's items (a halt on
``service.name=payments`` stops ``payments`` whatever the span). Keys are given
as ``--key NAME=VALUE`` (repeatable); ``true``/``false`` and numbers are typed
values, quote a value (``NAME='"3"'``) to keep it a string.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Final

from faultlens.shared import format_key

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.cli import CommandError
from faultlens_collector.cli.connect import add_actor_option, add_connection_options, call, connect
from faultlens_collector.cli.table import render_table
from faultlens_collector.control.messages import halt_json, key_items, key_of
from faultlens_collector.control.methods import MAX_INT64, MAX_LIMIT
from faultlens_collector.report import iso_time


def register(subparsers: Any) -> None:
    """Add ``halts`` and its subcommands."""
    parser = subparsers.add_parser("halts", help="list, lift, start and follow halts")
    commands = parser.add_subparsers(dest="halts_command", metavar="SUBCOMMAND")
    commands.required = True

    listing = commands.add_parser("list", help="halts in force (or, with --all, the history)")
    listing.add_argument("--all", action="store_true", help="lifted halts too, newest first")
    listing.add_argument("--limit", type=int, default=100, help="with --all: at most this many")
    listing.add_argument("--json", action="store_true", help="print JSON only (one array)")
    add_connection_options(listing)
    listing.set_defaults(handler=run_list)

    resume = commands.add_parser("resume", help="lift a halt (by id, or every halt on a key)")
    resume.add_argument("id", nargs="?", default="", help="the halt's id (see `halts list`)")
    _add_key(resume)
    resume.add_argument(
        "--json", action="store_true", help="print JSON only (an array of the halts lifted)"
    )
    add_actor_option(resume)
    add_connection_options(resume)
    resume.set_defaults(handler=run_resume)

    start = commands.add_parser("start", help="halt a key by hand (a fleet-wide kill switch)")
    _add_key(start)
    start.add_argument("--reason", required=True)
    start.add_argument("--json", action="store_true", help="print JSON only (the halt)")
    add_actor_option(start)
    add_connection_options(start)
    start.set_defaults(handler=run_start)

    watch = commands.add_parser("watch", help="print the halts, then every change, until ^C")
    watch.add_argument("--json", action="store_true", help="one JSON object per line")
    add_connection_options(watch)
    watch.set_defaults(handler=run_watch)


def _add_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a key item, e.g. service.name=payments (repeatable)",
    )


def parse_key(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items → a key; JSON scalars (true, 3, 0.5, "3") keep their type."""
    key: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CommandError(f"--key {item!r}: expected NAME=VALUE")
        value: Any = text
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, (str, bool, int, float)):
            value = decoded
        if isinstance(value, float) and not math.isfinite(value):
            raise CommandError(f"--key {item!r}: {text} is not a finite number")
        if isinstance(value, int) and not -MAX_INT64 - 1 <= value <= MAX_INT64:
            raise CommandError(f"--key {item!r}: a whole number is at most 2^63 - 1 in size")
        if name in key:
            raise CommandError(f"--key {name} is given twice")
        key[name] = value
    return key


def _describe(halt: Any) -> str:
    return format_key(key_of(halt.key)) or "(everything)"


def run_list(args: argparse.Namespace) -> int:
    """``halts list``."""
    with connect(args) as client:
        reply = call(
            client.call,
            "ListHalts",
            control_pb2.ListHaltsRequest(
                include_resumed=args.all, limit=min(max(args.limit, 1), MAX_LIMIT)
            ),
        )
    if args.json:
        print(json.dumps([halt_json(halt) for halt in reply.halts], indent=2))
        return 0
    if not reply.halts:
        print("no halts in force" if not args.all else "no halts")
        return 0
    rows = [
        (
            halt.id,
            _describe(halt),
            halt.rule,
            iso_time(halt.since_unix_nano) or "",
            f"resumed by {halt.resumed_by}" if halt.resumed_unix_nano else "in force",
            halt.reason,
        )
        for halt in reply.halts
    ]
    print(render_table(("id", "key", "rule", "since (UTC)", "state", "reason"), rows))
    return 0


def run_resume(args: argparse.Namespace) -> int:
    """``halts resume``."""
    key = parse_key(args.key)
    if not args.id and not key:
        raise CommandError("give the halt's id or --key NAME=VALUE")
    request = control_pb2.ResumeHaltRequest(id=args.id, key=key_items(key), actor=args.actor)
    with connect(args) as client:
        reply = call(client.call, "ResumeHalt", request)
    if args.json:
        print(json.dumps([halt_json(halt) for halt in reply.resumed], indent=2))
        return 0
    for halt in reply.resumed:
        print(f"resumed {halt.id} ({_describe(halt)}, rule {halt.rule})")
    return 0


def run_start(args: argparse.Namespace) -> int:
    """``halts start``."""
    key = parse_key(args.key)
    if not key:
        raise CommandError("give the key to halt: --key NAME=VALUE")
    request = control_pb2.StartHaltRequest(key=key_items(key), reason=args.reason, actor=args.actor)
    with connect(args) as client:
        halt = call(client.call, "StartHalt", request)
    if args.json:
        print(json.dumps(halt_json(halt), indent=2))
        return 0
    print(f"halted {_describe(halt)} (id {halt.id})")
    return 0


_EVENT_NAMES: Final = {
    control_pb2.HALT_EVENT_KIND_SNAPSHOT: "snapshot",
    control_pb2.HALT_EVENT_KIND_HALTED: "halted",
    control_pb2.HALT_EVENT_KIND_RESUMED: "resumed",
}


def run_watch(args: argparse.Namespace) -> int:
    """``halts watch``: until interrupted or the processor ends the stream."""
    with connect(args) as client:
        call(_print_events, client, args.json)
    return 0


def _print_events(client: Any, as_json: bool) -> None:
    for event in client.stream("WatchHalts", control_pb2.WatchHaltsRequest()):
        kind = _EVENT_NAMES.get(event.kind)
        if kind is None:
            continue
        if as_json:
            halts = [halt_json(halt) for halt in event.halts]
            print(json.dumps({"kind": kind, "version": event.version, "halts": halts}))
        elif kind == "snapshot":
            print(f"{len(event.halts)} halt(s) in force")
            for halt in event.halts:
                print(f"  {halt.id}  {_describe(halt)}  {halt.reason}")
        else:
            for halt in event.halts:
                print(f"{kind} {halt.id}  {_describe(halt)}  {halt.reason}")
        sys.stdout.flush()
