"""Choosing failure groups on the command line: the filters of ``list`` and, for bulk
commands, fingerprints too."""

from __future__ import annotations

import argparse
from typing import Any

from faultlens import semconv

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.cli.connect import parse_since
from faultlens_collector.control.client import filter_message
from faultlens_collector.groups.model import STATUSES


def add_group_filters(parser: argparse.ArgumentParser) -> None:
    """``--status``, ``--service``, ``--category``, ``--severity``, ``--tag``, ``--since``."""
    parser.add_argument("--status", action="append", choices=STATUSES, help="repeatable")
    parser.add_argument("--service", action="append", help="service.name (repeatable)")
    parser.add_argument("--category", action="append", help="failure category (repeatable)")
    parser.add_argument(
        "--severity", action="append", choices=semconv.SEVERITIES, help="repeatable"
    )
    parser.add_argument("--tag", action="append", help="groups carrying this tag (repeatable)")
    parser.add_argument(
        "--since", help="only groups seen since: 30m, 2h, 7d, or an ISO date/time (UTC)"
    )


def group_filter(args: argparse.Namespace) -> Any:
    """The ``GroupFilter`` the filter options give."""
    return filter_message(
        statuses=args.status or (),
        services=args.service or (),
        categories=args.category or (),
        severities=args.severity or (),
        since_unix_nano=parse_since(args.since) if args.since else 0,
        tags=args.tag or (),
    )


def add_selection(parser: argparse.ArgumentParser) -> None:
    """Fingerprints (positional), the group filters, ``--all`` and ``--dry-run``."""
    parser.add_argument(
        "fingerprints",
        nargs="*",
        metavar="FINGERPRINT",
        help="groups by fingerprint (or a unique prefix of 4+ characters); with filters, "
        "only those that match them",
    )
    add_group_filters(parser)
    parser.add_argument(
        "--all", action="store_true", help="act on every group (when no fingerprint or filter)"
    )
    parser.add_argument(
        "--with-symptoms",
        action="store_true",
        help="also the groups marked as symptoms of the selected ones (their root "
        "cause is a selected group): resolve or dismiss a root and what it took down",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="only print how many groups would change"
    )


def selection(args: argparse.Namespace) -> Any:
    """The ``GroupSelection`` the selection options give."""
    return control_pb2.GroupSelection(
        fingerprints=args.fingerprints,
        filter=group_filter(args),
        all=args.all,
        with_symptoms=args.with_symptoms,
    )
