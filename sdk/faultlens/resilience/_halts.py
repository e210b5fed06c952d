"""Halts: what they are, who can hold them, and how they survive a restart.

A :class:`Halt` stops work for a *key* — a mapping of attributes such as
``{"strategy": "VWAP", "symbol": "AAPL"}``; which keys a halt covers is
:mod:`faultlens._halt_keys` (shared with the processor).

A :class:`HaltSource` is anything that can say whether a key is halted. A
:class:`~faultlens.resilience.FailureTracker` is one (its own halts); other
sources — for instance a fleet-wide guard that follows halts decided elsewhere —
plug into a tracker's guard with ``halt_sources=`` or
:meth:`~faultlens.resilience.FailureTracker.add_halt_source`. Whoever holds the
halt, the guard refuses work with the one exception for it,
:class:`~faultlens.resilience.HaltedError`.

:class:`HaltFile` keeps a tracker's halts in a JSON file, written atomically
(temporary file in the same directory, ``fsync``, ``os.replace``, then an
``fsync`` of the directory) so that a crash leaves either the old or the new
content, never a torn file (:func:`faultlens.resilience._durable.replace_file`,
which checkpoints use too).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from faultlens._halt_keys import Key, KeyValue, make_key
from faultlens.resilience._durable import replace_file
from faultlens.resilience._support import jsonable
from faultlens.resilience.errors import HaltedError

FILE_FORMAT: Final = "faultlens.halts/1"


@dataclass(frozen=True, slots=True)
class Halt:
    """A halt in force: who holds it, for which key, why, since when."""

    source: str
    key: Key
    reason: str
    since: datetime
    consecutive_failures: int = 0
    last_error: str | None = None

    @property
    def attributes(self) -> dict[str, KeyValue]:
        """The key as a dict."""
        return dict(self.key)

    def error(self) -> HaltedError:
        """The exception that refuses work under this halt."""
        return HaltedError(self.source, self.attributes, self.reason, self.since)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serializable form."""
        return {**jsonable(self), "key": self.attributes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Halt:
        """Inverse of :meth:`as_dict`; raises ValueError, TypeError or KeyError if malformed."""
        since = datetime.fromisoformat(str(data["since"]))
        if since.tzinfo is None:
            raise ValueError(f"halt time {data['since']!r} has no time zone")
        last_error = data.get("last_error")
        return cls(
            source=str(data["source"]),
            key=make_key(data["key"]),
            reason=str(data["reason"]),
            since=since,
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            last_error=None if last_error is None else str(last_error),
        )


@runtime_checkable
class HaltSource(Protocol):
    """Something a guard consults: the halt in force for ``key``, or None."""

    def halt_for(self, key: Mapping[str, KeyValue]) -> Halt | None: ...


class HaltFile:
    """The halts of one tracker, kept in a JSON file."""

    def __init__(self, path: str | os.PathLike[str], tracker: str) -> None:
        self.path = Path(path)
        self.tracker = tracker

    def load(self) -> list[Halt]:
        """The halts stored in the file (none if it does not exist).

        Raises ``ValueError`` naming the file when it cannot be read or parsed,
        or belongs to another tracker: a halt that cannot be read must not be
        silently lifted.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ValueError(f"faultlens: cannot read halt state file {self.path}: {exc}") from exc
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
                raise ValueError(f"not a {FILE_FORMAT} document")
            owner = data.get("tracker")
            if owner != self.tracker:
                raise ValueError(f"it belongs to tracker {owner!r}, not {self.tracker!r}")
            return [Halt.from_dict(item) for item in data["halts"]]
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(
                f"faultlens: halt state file {self.path} is unusable ({exc}); the halts it "
                "held are unknown: check them, then fix or remove the file"
            ) from exc

    def save(self, halts: list[Halt]) -> None:
        """Replace the file's content with ``halts`` atomically; raises ``OSError``."""
        document = {
            "format": FILE_FORMAT,
            "tracker": self.tracker,
            "halts": [halt.as_dict() for halt in halts],
        }
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        replace_file(self.path, text.encode("utf-8"))
