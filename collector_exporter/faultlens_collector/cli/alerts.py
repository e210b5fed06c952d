"""``faultlens alerts watch``: follow the alerts a processor raises, as they are raised."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.cli.connect import add_connection_options, call, connect
from faultlens_collector.control.messages import alert_json


def register(subparsers: Any) -> None:
    """Add ``alerts``."""
    parser = subparsers.add_parser("alerts", help="follow the alerts a processor raises")
    commands = parser.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")
    commands.required = True
    watch = commands.add_parser("watch", help="print each alert as it is raised, until ^C")
    watch.add_argument("--kind", action="append", default=[], help="only this kind (repeatable)")
    watch.add_argument("--json", action="store_true", help="one JSON object per line")
    add_connection_options(watch)
    watch.set_defaults(handler=run_watch)


def run_watch(args: argparse.Namespace) -> int:
    """Print alerts until interrupted or the processor ends the stream."""
    with connect(args) as client:
        call(_print_alerts, client, control_pb2.StreamAlertsRequest(kinds=args.kind), args.json)
    return 0


def _print_alerts(client: Any, request: Any, as_json: bool) -> None:
    for alert in client.stream("StreamAlerts", request):
        if as_json:
            print(json.dumps(alert_json(alert)))
        else:
            print(f"{alert.severity:8} {alert.kind:16} {alert.body}")
        sys.stdout.flush()
