"""Storm control: bounded, exact accounting of repeated failures.

A failure that repeats thousands of times a second must not cost thousands of
stack formattings nor flood the exporter. For each fingerprint:

* occurrences are recorded **in full** (with ``exception.stacktrace``) while a
  token bucket allows it: ``burst`` tokens to start with, one more every
  ``refill_seconds``;
* the others are **counted**; at most once per ``interval_seconds`` an
  occurrence is emitted as an **aggregate** event whose ``failure.count`` is the
  number of occurrences it stands for (itself plus the ones counted since the
  previous event);
* counts still pending when a storm stops are handed out by :meth:`take_due`
  (the recorder's flusher emits them) so that summing ``failure.count`` over
  every event gives the exact number of occurrences.

State is kept for at most ``max_keys`` fingerprints (least recently seen
evicted first); an evicted fingerprint's pending count is handed out by the
next :meth:`take_due`, never dropped. All methods are thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

SUPPRESS: Final = 0
FULL: Final = 1
AGGREGATE: Final = 2


@dataclass(frozen=True, slots=True)
class Due:
    """Occurrences counted but not yet emitted for one fingerprint."""

    fingerprint: str
    count: int
    sample: tuple[Any, ...] | None


class _State:
    __slots__ = ("last_emit", "pending", "refilled", "sample", "tokens")

    def __init__(self, tokens: int, now: float) -> None:
        self.tokens = tokens
        self.refilled = now
        self.pending = 0
        self.last_emit = now
        self.sample: tuple[Any, ...] | None = None


class StormControl:
    """Per-fingerprint admission decisions; see the module docstring."""

    def __init__(
        self,
        *,
        burst: int = 10,
        refill_seconds: float = 10.0,
        interval_seconds: float = 1.0,
        max_keys: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1:
            raise ValueError(f"faultlens: storm burst must be >= 1, got {burst}")
        if refill_seconds <= 0 or interval_seconds <= 0:
            raise ValueError("faultlens: storm refill and interval must be > 0 seconds")
        if max_keys < 1:
            raise ValueError(f"faultlens: storm max_keys must be >= 1, got {max_keys}")
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.interval_seconds = interval_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._states: OrderedDict[str, _State] = OrderedDict()
        self._dirty: set[str] = set()
        self._evicted: list[Due] = []

    def __len__(self) -> int:
        return len(self._states)

    def admit(self, fingerprint: str) -> tuple[int, int]:
        """Decide for one occurrence: ``(mode, count)``.

        ``mode`` is :data:`FULL`, :data:`AGGREGATE` or :data:`SUPPRESS`;
        ``count`` is how many occurrences the event to emit stands for (0 when
        suppressed: the occurrence is counted and will be emitted later).
        """
        now = self._clock()
        with self._lock:
            state = self._states.get(fingerprint)
            if state is None:
                state = _State(self.burst, now)
                self._states[fingerprint] = state
                if len(self._states) > self.max_keys:
                    self._evict_oldest()
            else:
                self._states.move_to_end(fingerprint)
                if state.tokens < self.burst:
                    # Whole tokens only: small ints are shared objects, which keeps
                    # the per-fingerprint state small.
                    gained = int((now - state.refilled) / self.refill_seconds)
                    if gained:
                        state.tokens = min(self.burst, state.tokens + gained)
                        state.refilled = (
                            now
                            if state.tokens == self.burst
                            else state.refilled + gained * self.refill_seconds
                        )
                else:
                    state.refilled = now  # a full bucket earns no credit while it waits
            state.pending += 1
            if state.tokens >= 1:
                state.tokens -= 1
                return FULL, self._take(fingerprint, state, now)
            if now - state.last_emit >= self.interval_seconds:
                return AGGREGATE, self._take(fingerprint, state, now)
            self._dirty.add(fingerprint)
            return SUPPRESS, 0

    def remember(self, fingerprint: str, sample: tuple[Any, ...]) -> None:
        """Keep the attributes of the last emitted event, to describe later aggregates."""
        with self._lock:
            state = self._states.get(fingerprint)
            if state is not None:
                state.sample = sample

    def take_due(self, *, force: bool = False) -> list[Due]:
        """Hand out pending counts older than the interval (all of them if ``force``)."""
        now = self._clock()
        with self._lock:
            due, self._evicted = self._evicted, []
            for fingerprint in list(self._dirty):
                state = self._states.get(fingerprint)
                if state is None or state.pending == 0:
                    self._dirty.discard(fingerprint)
                    continue
                if force or now - state.last_emit >= self.interval_seconds:
                    sample = state.sample
                    due.append(Due(fingerprint, self._take(fingerprint, state, now), sample))
            return due

    def pending(self) -> int:
        """Occurrences counted and not yet handed out (for tests and diagnostics)."""
        with self._lock:
            return sum(state.pending for state in self._states.values()) + sum(
                item.count for item in self._evicted
            )

    def clear(self) -> None:
        """Forget every fingerprint, pending counts included."""
        with self._lock:
            self._states.clear()
            self._dirty.clear()
            self._evicted.clear()

    def _take(self, fingerprint: str, state: _State, now: float) -> int:
        count = state.pending
        state.pending = 0
        state.last_emit = now
        self._dirty.discard(fingerprint)
        return count

    def _evict_oldest(self) -> None:
        fingerprint, state = self._states.popitem(last=False)
        self._dirty.discard(fingerprint)
        if state.pending:
            self._evicted.append(Due(fingerprint, state.pending, state.sample))
