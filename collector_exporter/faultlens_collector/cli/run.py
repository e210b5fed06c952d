"""``faultlens run [options] -- CMD ...``: run a command with capture on; report its failures.

See :mod:`faultlens_collector.detection.run` for what runs where,
:mod:`faultlens_collector.detection.report` for the report, the baseline and the
exit status, and docs/ci.md for a CI job.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path
from typing import Any

from faultlens_collector.cli import CommandError
from faultlens_collector.cli.scan import add_report_options


def register(subparsers: Any) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run a command with failure capture on, report the failures it swallowed, "
        "logged or let escape",
        description=(
            "Run CMD (pytest, python job.py, a shell script starting Python processes) with "
            "zero-code capture on in every Python process it starts, into an embedded "
            "processor; print the failure groups (silent ones first) and write the report. "
            "Exit status: the command's own when it failed; otherwise 1 when a failure group "
            "is new (every group without --baseline), 0 clean, 2 usage errors."
        ),
        usage="faultlens run [options] -- CMD [ARG ...]",
    )
    add_report_options(
        parser,
        "leave out failure groups whose exception type, fingerprint, message, process or "
        "stack trace matches this glob: the idioms the team accepts (repeatable)",
    )
    parser.add_argument(
        "--instrument",
        metavar="TARGETS",
        help="what to instrument, as FAULTLENS_INSTRUMENT (module:func, module:Class.*, "
        "module:*; comma-separated); default: every module of the project around the "
        "current folder",
    )
    parser.add_argument(
        "--store",
        type=Path,
        metavar="PATH",
        help="keep the processor's SQLite store here (default: a temporary one)",
    )
    parser.add_argument(
        "--send",
        metavar="HOST:PORT",
        help="also pass everything captured on to this processor (https:// for TLS)",
    )
    parser.add_argument(
        "--send-header",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="gRPC metadata for --send, e.g. authorization='Bearer TOKEN' (repeatable)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the command, print and write the report; the exit status."""
    from faultlens.shared import parse_endpoint

    from faultlens_collector.detection.report import Report, load_baseline
    from faultlens_collector.detection.run import RunSettings
    from faultlens_collector.detection.run import run as run_command

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise CommandError("give the command to run after --, e.g. faultlens run -- pytest -q")
    headers = []
    for header in args.send_header:
        key, sep, value = header.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--send-header {header!r}: expected KEY=VALUE")
        headers.append((key.strip().lower(), value.strip()))
    if args.send is not None:
        try:
            parse_endpoint(args.send)
        except ValueError as exc:
            raise CommandError(f"--send: {exc}") from exc
    baseline = load_baseline(args.baseline) if args.baseline is not None else None
    started = time.monotonic()
    outcome = run_command(
        RunSettings(
            command=command,
            instrument=args.instrument,
            store=args.store,
            send=args.send,
            send_headers=tuple(headers),
            stdout_to_stderr=args.json,
        )
    )
    failures = [f for f in outcome.failures if not _ignored(f, args.ignore)]
    report = Report("run", sys.argv[1:], failures, started, baseline, command_status=outcome.status)
    print(file=sys.stderr)
    report.print(sys.stderr)
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    if args.report is not None:
        report.write(args.report)
    if outcome.status:
        print(f"faultlens run: the command exited with status {outcome.status}", file=sys.stderr)
    return report.exit_status


def _ignored(failure: Any, patterns: list[str]) -> bool:
    """An ``--ignore`` glob matches the exception type, the fingerprint, the message, the
    process (``where``) or the stack trace (``*legacy/compat.py*``)."""
    fields = (
        failure.exception_type,
        failure.fingerprint,
        failure.message,
        failure.where,
        failure.stacktrace,
    )
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns for value in fields)
