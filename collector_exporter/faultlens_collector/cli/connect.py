"""Options every control-API subcommand shares: ``--target``, ``--token``, ``--tls-ca``;
``--actor`` for those that change something; times given on the command line."""

from __future__ import annotations

import argparse
import getpass
import math
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from faultlens_collector.cli import CommandError
from faultlens_collector.control.client import DEFAULT_TARGET, ControlClient, ControlError
from faultlens_collector.control.methods import LATEST_TIME, MAX_INT64

TOKEN_ENV: Final = "FAULTLENS_TOKEN"
TARGET_ENV: Final = "FAULTLENS_TARGET"
ACTOR_ENV: Final = "FAULTLENS_ACTOR"
_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--target``, ``--token`` and ``--tls-ca``."""
    parser.add_argument(
        "--target",
        default=os.environ.get(TARGET_ENV, DEFAULT_TARGET),
        metavar="HOST:PORT",
        help=f"the processor (default ${TARGET_ENV} or {DEFAULT_TARGET}; https:// for TLS)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"bearer token the processor requires (default ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--tls-ca", type=Path, metavar="FILE", help="CA certificate (PEM) to verify the processor"
    )


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number from 1 to 2^63 - 1 (the largest faultlens
    stores)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    if value > MAX_INT64:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_INT64}")
    return value


def add_actor_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--actor`` (who is acting, for the processor's operator log)."""
    parser.add_argument(
        "--actor",
        default=os.environ.get(ACTOR_ENV) or _login(),
        help=f"who is acting, for the operator log (default ${ACTOR_ENV} or your login name)",
    )


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in this environment
        return ""


def connect(args: argparse.Namespace) -> ControlClient:
    """A client for the processor the options name."""
    try:
        return ControlClient(args.target, token=args.token, ca_file=args.tls_ca)
    except ControlError as exc:
        raise CommandError(str(exc)) from exc


def call(function: Any, *arguments: Any) -> Any:
    """Run a client call, turning a :class:`ControlError` into a one-line :class:`CommandError`."""
    try:
        return function(*arguments)
    except ControlError as exc:
        raise CommandError(str(exc), exit_code=1) from exc


def parse_since(text: str, *, now: float | None = None) -> int:
    """``30m``, ``2h``, ``7d``, ``1w`` ago, or an ISO 8601 date/time → Unix nanoseconds.

    Naive ISO times are taken as UTC; a moment before 1970 is 0 (everything), one past
    the latest time faultlens stores (2262) is that time. Raises :class:`CommandError`
    for anything else.
    """
    return min(max(_moment(text, "--since", -1, now), 0), MAX_INT64)


def parse_until(text: str, *, now: float | None = None) -> int:
    """``30m``, ``2h``, ``7d``, ``1w`` from now, or an ISO 8601 date/time → Unix
    nanoseconds (naive ISO times are UTC). Raises :class:`CommandError` for anything
    else, a moment before 1970, or one past the latest time faultlens stores (2262)."""
    value = _moment(text, "--until", 1, now)
    if value <= 0:
        raise CommandError(f"--until {text.strip()!r} is in the past")
    if value > MAX_INT64:
        raise CommandError(
            f"--until {text.strip()!r} is past the latest time faultlens can store ({LATEST_TIME})"
        )
    return value


def _moment(text: str, option: str, sign: int, now: float | None) -> int:
    """Unix nanoseconds, any size (the callers bound them); ``sign`` -1: a duration ago."""
    text = text.strip()
    match = _DURATION.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        nanos = ((time.time() if now is None else now) + sign * seconds) * 1e9
        if not math.isfinite(nanos):  # a duration too long for a float: past any bound
            return sign * (MAX_INT64 + 1)
        return int(nanos)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"{option} {text!r}: give a duration like 30m, 2h, 7d or an ISO date like 2026-11-20"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # Exact integer arithmetic: a float would round times near the bounds.
    since_epoch = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (since_epoch.days * 86_400 + since_epoch.seconds) * 10**9 + (
        since_epoch.microseconds * 1000
    )
