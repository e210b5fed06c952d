"""``faultlens scan [PACKAGE|PATH ...]``: import, compile and load everything, report what breaks.

See :mod:`faultlens_collector.detection.scan` for what is tried and
:mod:`faultlens_collector.detection.report` for the report, the baseline and the
exit status (shared with ``faultlens run``); docs/ci.md for a CI job.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from faultlens_collector.cli import CommandError
from faultlens_collector.cli.connect import positive_int


def add_report_options(parser: argparse.ArgumentParser, ignore_help: str) -> None:
    """``--report``, ``--baseline``, ``--ignore`` and ``--json``: shared by ``scan`` and
    ``run``."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON only on stdout (what --report writes as .json); "
        "for run, the command's own standard output goes to standard error",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="write the report: JSON, or JSONL for a .jsonl name (schema: "
        "faultlens_collector/detection/schema.json)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="a previous report: exit 1 only for groups it does not have, and list the ones "
        "gone (a file that does not exist yet: this run sets the baseline)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="PATTERN",
        help=ignore_help,
    )


def register(subparsers: Any) -> None:
    """Add the ``scan`` subcommand."""
    parser = subparsers.add_parser(
        "scan",
        help="import every module, compile every file, load every entry point: report failures",
        description=(
            "Import every module of the packages (the current project's by default) in "
            "isolated worker processes with a time limit each, byte-compile every file, load "
            "every entry point of their distribution and run each console script with --help. "
            "Each problem is a failure fingerprinted like the same defect at run time. Exit "
            "status: 0 clean, 1 new failures (every failure without --baseline), 2 usage errors."
        ),
    )
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="PACKAGE|PATH",
        help="importable package or module names, distribution names, package folders, "
        "source trees or .py files (default: the project around the current folder)",
    )
    add_report_options(
        parser,
        "leave out modules and entry points (group:name or value) matching this glob (repeatable)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="worker processes (default: one per CPU)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time limit of each import, load or --help run (default 10)",
    )
    parser.add_argument(
        "--isolated",
        action="store_true",
        help="import every module from a clean worker: slower; by default a worker keeps "
        "the modules it imported cleanly, as an application would",
    )
    parser.add_argument(
        "--no-entry-points",
        action="store_true",
        help="do not load entry points or run console scripts",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Scan, print, write the report; the exit status."""
    from faultlens_collector.detection.project import TargetError, resolve
    from faultlens_collector.detection.report import Report, load_baseline
    from faultlens_collector.detection.scan import ScanSettings, scan

    if args.timeout <= 0:
        raise CommandError("--timeout must be positive")
    started = time.monotonic()
    baseline = load_baseline(args.baseline) if args.baseline is not None else None
    try:
        packages = resolve(args.targets, Path.cwd())
    except TargetError as exc:
        raise CommandError(str(exc)) from exc
    settings = ScanSettings(
        timeout=args.timeout,
        ignore=tuple(args.ignore),
        entry_points=not args.no_entry_points,
        isolated=args.isolated,
        **({"jobs": args.jobs} if args.jobs else {}),
    )
    modules = sum(len(package.modules) for package in packages)
    names = ", ".join(package.name for package in packages)
    print(f"faultlens scan: {names} ({modules} modules)", file=sys.stderr, flush=True)
    failures = scan(packages, settings)
    report = Report("scan", sys.argv[1:], failures, started, baseline)
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        report.print(sys.stdout)
    if args.report is not None:
        report.write(args.report)
    print(
        f"faultlens scan: {modules} modules in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return report.exit_status
