"""The ``faultlens`` command line.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds its parser and sets ``handler`` (a function taking the parsed
namespace and returning an exit code). Errors a user can cause are reported as
one line on stderr with a non-zero exit, never a traceback: handlers raise
:class:`CommandError` for those.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from faultlens import __version__

#: Modules that contribute subcommands, in the order ``--help`` lists them.
SUBCOMMAND_MODULES = (
    "faultlens_collector.cli.demo",
    "faultlens_collector.cli.serve",
    "faultlens_collector.cli.console",
    "faultlens_collector.cli.failures",
    "faultlens_collector.cli.halts",
    "faultlens_collector.cli.alerts",
    "faultlens_collector.cli.audit",
    "faultlens_collector.cli.check",
    "faultlens_collector.cli.scan",
    "faultlens_collector.cli.run",
)


class CommandError(Exception):
    """A user-caused error: printed as ``faultlens: <message>``, exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise CommandError(message)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    parser = _Parser(
        prog="faultlens",
        description="faultlens: failures you cannot miss, on OpenTelemetry.",
    )
    parser.add_argument("--version", action="version", version=f"faultlens {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``faultlens`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args))
    except CommandError as err:
        print(f"faultlens: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("faultlens: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
