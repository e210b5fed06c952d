"""The records the action engine keeps: executions, fixes, halts, queued jobs (alerts are
:mod:`faultlens_collector.alerts.records`).

All times are epoch seconds (``float``), so records survive a restart and
compare across processes. Every record converts to and from a JSON-ready dict
(``as_json`` / ``from_json``) — the form the SQLite store keeps and the control
API will serve.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Final, Literal

from faultlens.resilience import Halt
from faultlens.shared import Key, make_key

from faultlens_collector.actions.facts import FailureFacts

#: How a hook execution ended.
Outcome = Literal["ok", "failed", "timeout", "error", "dry_run", "dropped"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("ok", "failed", "timeout", "error", "dry_run", "dropped")

#: Why a hook ran: a rule's fix, a halt rule's halt hooks, or an operator's request.
Purpose = Literal["fix", "halt", "manual"]

FixResult = Literal["pending", "verified", "failed"]


def new_id() -> str:
    """A random 16-hex-digit identifier (64 random bits from the OS)."""
    return os.urandom(8).hex()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One hook execution (or a job that could not be executed).

    ``exit_code`` is None when no process ran to completion (dry run, could not
    start, dropped) and negative when a signal ended it (``-9``: killed after the
    timeout). ``output_tail`` is the last bytes of stdout and stderr together,
    redacted. ``detail`` says why in words (``timed out after 0.5 s``).
    """

    id: str
    started_at: float
    purpose: Purpose
    rule: str
    hook: str
    fingerprint: str
    outcome: Outcome
    exit_code: int | None
    duration: float
    output_tail: str = ""
    detail: str = ""
    requested_by: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRecord:
        return cls(**dict(data))


@dataclass(frozen=True, slots=True)
class FixRecord:
    """A fix hook that finished: pending until verified (no recurrence within the
    window) or failed (the group recurred, or the hook itself failed)."""

    id: str
    hook: str
    rule: str
    fingerprint: str
    applied_at: float
    deadline: float
    duration: float
    result: FixResult = "pending"
    decided_at: float | None = None
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FixRecord:
        return cls(**dict(data))


@dataclass(frozen=True, slots=True)
class HookRun:
    """A hook execution with, for a fix, whether it held: ``fix`` is the
    :class:`FixRecord` of the same id (pending, verified or failed), None for runs
    that are not judged (halt hooks, dry runs, dropped jobs)."""

    record: AuditRecord
    fix: FixRecord | None = None


@dataclass(frozen=True, slots=True)
class HaltRecord:
    """A halt decided by a halt rule (or by an operator): in force until resumed."""

    id: str
    rule: str
    key: Key
    reason: str
    since: float
    fingerprints: tuple[str, ...] = ()
    resumed_at: float | None = None
    resumed_by: str | None = None

    @property
    def active(self) -> bool:
        return self.resumed_at is None

    @property
    def attributes(self) -> dict[str, Any]:
        """The key as a dict."""
        return dict(self.key)

    def to_sdk_halt(self) -> Halt:
        """The SDK's form, for guards that refuse work while the key is halted."""
        return Halt(
            source=f"faultlens:{self.rule}",
            key=self.key,
            reason=self.reason,
            since=datetime.fromtimestamp(self.since, timezone.utc),
        )

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = self.attributes
        data["fingerprints"] = list(self.fingerprints)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HaltRecord:
        values = dict(data)
        values["key"] = make_key(values["key"])
        values["fingerprints"] = tuple(values.get("fingerprints", ()))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class HookJob:
    """A request to run one hook for one failure group (or one halt)."""

    id: str
    hook: str
    rule: str
    purpose: Purpose
    facts: FailureFacts
    created_at: float
    halt: HaltRecord | None = None
    requested_by: str = ""

    def payload(self, *, dry_run: bool) -> dict[str, Any]:
        """The JSON document a hook reads on stdin."""
        return {
            "schema": "faultlens.hook/1",
            "job_id": self.id,
            "purpose": self.purpose,
            "rule": self.rule,
            "hook": self.hook,
            "dry_run": dry_run,
            "requested_by": self.requested_by,
            "failure": self.facts.as_json(),
            "halt": None if self.halt is None else self.halt.as_json(),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hook": self.hook,
            "rule": self.rule,
            "purpose": self.purpose,
            "facts": self.facts.as_json(),
            "created_at": self.created_at,
            "halt": None if self.halt is None else self.halt.as_json(),
            "requested_by": self.requested_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HookJob:
        halt = data.get("halt")
        return cls(
            id=str(data["id"]),
            hook=str(data["hook"]),
            rule=str(data["rule"]),
            purpose=data["purpose"],
            facts=FailureFacts.from_json(data["facts"]),
            created_at=float(data["created_at"]),
            halt=None if halt is None else HaltRecord.from_json(halt),
            requested_by=str(data.get("requested_by", "")),
        )


def dumps(data: Mapping[str, Any]) -> str:
    """Compact, deterministic JSON (the stored form)."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
