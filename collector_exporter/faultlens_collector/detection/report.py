"""The detection report: what ``faultlens scan`` and ``faultlens run`` found.

JSON (``--report FILE``) has the shape ``schema.json`` (shipped in this package,
JSON Schema 2020-12) describes::

    {"metadata":   {"tool", "version", "command", "generated_at", "session_id", "argv",
                    "python", "platform", "duration_seconds", "exit_status", "baseline"},
     "statistics": {"total_unique_failures", "total_failure_count", "silent_unique",
                    "by_category", "by_severity", "new", "gone"},
     "failures":   [{"fingerprint", "exception_type", "message", "category", "severity",
                     "count", "handled_count", "silent", "status", "detected_by", "where",
                     "first_seen", "last_seen", "services", "span_names", "stacktrace"}],
     "gone":       [{"fingerprint", "exception_type", "message", "category"}]}

A file named ``*.jsonl`` gets one JSON object per line instead: a ``metadata``
record (metadata and statistics), then one ``failure`` record per failure, then
one ``gone`` record per group the baseline had and this run did not. Either form
serves as a ``--baseline``.

Exit status (docs/ci.md, "Exit status and the baseline"): the command's own when it
failed; otherwise 1 when a failure group is new — every group when no ``--baseline``
was given, those whose fingerprint the baseline lacks when one was — and 0 when none
is. A baseline file that does not exist yet makes this run the first: nothing is new
(the report written with ``--report`` becomes the baseline).
"""

from __future__ import annotations

import json
import platform
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Final, TextIO

from faultlens import __version__

from faultlens_collector.cli import CommandError

SCHEMA_RESOURCE: Final = "schema.json"
_SEVERITY_ORDER: Final = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(slots=True)
class Failure:
    """One failure group of a report."""

    fingerprint: str
    exception_type: str
    message: str
    category: str
    severity: str
    count: int = 1
    handled_count: int = 0
    stacktrace: str = ""
    detected_by: str = ""
    where: str = ""
    first_seen: str | None = None
    last_seen: str | None = None
    services: dict[str, int] = field(default_factory=dict)
    span_names: list[str] = field(default_factory=list)
    status: str = "new"

    @property
    def silent(self) -> bool:
        """Some occurrences were caught and the program went on (handled)."""
        return self.handled_count > 0

    def as_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "exception_type": self.exception_type,
            "message": self.message,
            "category": self.category,
            "severity": self.severity,
            "count": self.count,
            "handled_count": self.handled_count,
            "silent": self.silent,
            "status": self.status,
            "detected_by": self.detected_by,
            "where": self.where,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "services": dict(sorted(self.services.items())),
            "span_names": list(self.span_names),
            "stacktrace": self.stacktrace,
        }


@dataclass(frozen=True, slots=True)
class Baseline:
    """The failure groups a previous report held (``exists`` False: no file yet)."""

    path: Path
    exists: bool
    groups: dict[str, dict[str, Any]]


def load_baseline(path: Path) -> Baseline:
    """Read a JSON or JSONL report as a baseline; a missing file is an empty one.
    Raises :class:`CommandError` (exit 2) for a file that is not a report."""
    if not path.exists():
        return Baseline(path, False, {})
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
            failures = [r for r in records if r.get("record") == "failure"]
        else:
            failures = json.loads(text)["failures"]
        groups = {str(item["fingerprint"]): item for item in failures}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CommandError(f"--baseline {path}: not a faultlens report ({exc})") from exc
    return Baseline(path, True, groups)


@dataclass(slots=True)
class Report:
    """A finished detection: metadata, failures, and what a baseline says of them."""

    command: str
    argv: Sequence[str]
    failures: list[Failure]
    started: float
    baseline: Baseline | None = None
    command_status: int = 0
    gone: list[dict[str, Any]] = field(default_factory=list)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def __post_init__(self) -> None:
        self.failures.sort(key=_display_order)
        baseline = self.baseline
        if baseline is None:
            return
        current = {failure.fingerprint for failure in self.failures}
        for failure in self.failures:
            known = not baseline.exists or failure.fingerprint in baseline.groups
            failure.status = "known" if known else "new"
        self.gone = [
            {
                "fingerprint": fingerprint,
                "exception_type": str(item.get("exception_type", "")),
                "message": str(item.get("message", "")),
                "category": str(item.get("category", "")),
            }
            for fingerprint, item in sorted(baseline.groups.items())
            if fingerprint not in current
        ]

    @property
    def new(self) -> list[Failure]:
        return [failure for failure in self.failures if failure.status == "new"]

    @property
    def exit_status(self) -> int:
        """The command's own status when it failed, else 1 with new groups, else 0."""
        if self.command_status:
            return self.command_status
        return 1 if self.new else 0

    def statistics(self) -> dict[str, Any]:
        return {
            "total_unique_failures": len(self.failures),
            "total_failure_count": sum(failure.count for failure in self.failures),
            "silent_unique": sum(1 for failure in self.failures if failure.silent),
            "by_category": _tally(self.failures, "category"),
            "by_severity": _tally(self.failures, "severity"),
            "new": len(self.new),
            "gone": len(self.gone),
        }

    def metadata(self) -> dict[str, Any]:
        return {
            "tool": "faultlens",
            "version": __version__,
            "command": self.command,
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "session_id": self.session_id,
            "argv": list(self.argv),
            "python": platform.python_version(),
            "platform": sys.platform,
            "duration_seconds": round(time.monotonic() - self.started, 3),
            "exit_status": self.exit_status,
            "baseline": None if self.baseline is None else str(self.baseline.path),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "metadata": self.metadata(),
            "statistics": self.statistics(),
            "failures": [failure.as_json() for failure in self.failures],
            "gone": self.gone,
        }

    def write(self, path: Path) -> None:
        """Write the report as JSON, or as JSONL for a ``.jsonl`` name (CommandError
        when the file cannot be written)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as out:
                if path.suffix == ".jsonl":
                    self._write_lines(out)
                else:
                    json.dump(self.as_json(), out, indent=2, ensure_ascii=False)
                    out.write("\n")
        except OSError as exc:
            raise CommandError(f"--report {path}: {exc}", exit_code=2) from exc

    def _write_lines(self, out: TextIO) -> None:
        head = {"record": "metadata", **self.metadata(), "statistics": self.statistics()}
        out.write(json.dumps(head, ensure_ascii=False) + "\n")
        for failure in self.failures:
            out.write(json.dumps({"record": "failure", **failure.as_json()}, ensure_ascii=False))
            out.write("\n")
        for gone in self.gone:
            out.write(json.dumps({"record": "gone", **gone}, ensure_ascii=False) + "\n")

    def print(self, out: TextIO) -> None:
        """The groups, silent ones first, then a summary line (and gone groups)."""
        for failure in self.failures:
            marks = ("silent" if failure.silent else "escaped", failure.status)
            where = f" at {failure.where}" if failure.where else ""
            out.write(
                f"{failure.fingerprint}  {failure.count:>6}x  {failure.severity:<8} "
                f"{failure.category:<13} {marks[0]:<7} {marks[1]:<5} "
                f"{failure.exception_type}: {_one_line(failure.message)}{where}\n"
            )
        for gone in self.gone:
            out.write(
                f"{gone['fingerprint']}  gone: {gone['exception_type']}: "
                f"{_one_line(gone['message'])}\n"
            )
        stats = self.statistics()
        baseline = ""
        if self.baseline is not None:
            baseline = (
                f", {stats['new']} new, {stats['gone']} gone"
                if self.baseline.exists
                else f" (no baseline at {self.baseline.path} yet: this run sets it)"
            )
        out.write(
            f"faultlens {self.command}: {stats['total_unique_failures']} failure groups "
            f"({stats['silent_unique']} silent), {stats['total_failure_count']} "
            f"occurrences{baseline}\n"
        )


def schema() -> dict[str, Any]:
    """The report's JSON Schema (``schema.json`` in this package)."""
    text = resources.files(__package__).joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return dict(json.loads(text))


def _tally(failures: Iterable[Failure], attribute: str) -> dict[str, int]:
    counts = Counter(str(getattr(failure, attribute)) for failure in failures)
    return dict(sorted(counts.items()))


def _display_order(failure: Failure) -> tuple[int, int, int, str]:
    """Silent groups first, then by severity, then most frequent."""
    return (
        0 if failure.silent else 1,
        _SEVERITY_ORDER.get(failure.severity, 4),
        -failure.count,
        failure.fingerprint,
    )


def _one_line(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
