"""Failure tracker: halt a key after N consecutive failures instead of working on garbage.

::

    tracker = FailureTracker("signals", threshold=3, state_file="/var/lib/app/halts.json")

    for strategy, symbol in work:
        key = {"strategy": strategy.name, "symbol": symbol}
        try:
            tracker.guard(key)                     # HaltedError while the key is halted
            signal = strategy.generate(symbol)
        except HaltedError:
            continue
        except Exception as exc:
            tracker.record_failure(exc, key)       # the 3rd in a row halts the key
            continue
        tracker.record_success(key)                # resets the consecutive count

    @tracker.track(key=lambda strategy, symbol: {"strategy": strategy, "symbol": symbol})
    def generate(strategy, symbol): ...            # guard + success/failure, decorator form

    with tracker.tracking({"strategy": "VWAP"}):   # the same as a context manager
        ...

Consecutive failures are counted per key (any attributes; the empty key is the
tracker as a whole). A success resets the key's count; with ``reset_window`` a
failure more than that many seconds after the key's previous one starts the
count afresh. When a key's count reaches ``threshold`` the key is halted: the
``on_halt`` callbacks run (with the :class:`~faultlens.resilience.Halt`), a
``faultlens.tracker.halt`` span event is added, and the guard refuses work for
that key (and for every key containing it) with
:class:`~faultlens.resilience.HaltedError` until :meth:`FailureTracker.resume`
— a success does not lift a halt. :meth:`FailureTracker.halt` halts by hand.

Every failure is recorded through faultlens with ``failure.source=tracker``
(the one that starts a halt with severity at least ``high``), and so is every
refused call's ``HaltedError``. With ``state_file`` the halts are written
atomically on every change and read back at construction, so a restarted
process stays halted until someone resumes it; an unreadable file raises
``ValueError`` at construction rather than silently lifting its halts.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Final, Literal, TypeVar

from opentelemetry.metrics import MeterProvider
from opentelemetry.util.types import AttributeValue

from faultlens._fingerprint import hash_parts, safe_message
from faultlens._halt_keys import Key, KeyValue, covers, format_key, make_key
from faultlens._recorder import record_failure, redactor, runtime_settings
from faultlens.resilience import _metrics as metrics
from faultlens.resilience import _names as names
from faultlens.resilience import _report as report
from faultlens.resilience._halts import Halt, HaltFile, HaltSource
from faultlens.resilience._settings import Problems, defaults
from faultlens.resilience._support import add_span_event, callable_kind, jsonable, run_callbacks
from faultlens.resilience._testing import CLOCKS
from faultlens.semconv import qualified_type_name

F = TypeVar("F", bound=Callable[..., Any])
KeyArg = Mapping[str, KeyValue] | None
HaltCallback = Callable[[Halt], object]

_log = logging.getLogger("faultlens")

#: Per-key instruments and the :class:`_KeyState` field each one reports.
_KEY_FIELDS: Final = {
    "faultlens.tracker.consecutive_failures": "consecutive",
    "faultlens.tracker.failures": "failures",
    "faultlens.tracker.halts": "halts",
}
_MESSAGE_CHARS = 500


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One failure in a tracker's history (message redacted and clipped)."""

    key: dict[str, KeyValue]
    at: datetime
    exception_type: str
    message: str
    consecutive_failures: int
    halted: bool

    def as_dict(self) -> dict[str, Any]:
        return jsonable(self)


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """Counts of one key."""

    key: dict[str, KeyValue]
    consecutive_failures: int
    failures: int
    successes: int
    halts: int
    halted: bool
    last_failure: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return jsonable(self)


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """A tracker's status report: halts in force, per-key counts, recent failures."""

    name: str
    threshold: int
    halts: tuple[Halt, ...]
    keys: tuple[KeyStatus, ...]
    history: tuple[FailureRecord, ...]
    refused: int = 0

    @property
    def halted(self) -> bool:
        return bool(self.halts)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serializable form."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "halted": self.halted,
            "halts": [halt.as_dict() for halt in self.halts],
            "keys": [key.as_dict() for key in self.keys],
            "history": [record.as_dict() for record in self.history],
            "refused": self.refused,
        }

    def summary(self) -> str:
        """A few lines for humans."""
        lines = [f"tracker {self.name!r}: threshold {self.threshold} consecutive failures"]
        for halt in self.halts:
            lines.append(
                f"  HALTED {format_key(halt.attributes)} since "
                f"{halt.since.isoformat(timespec='seconds')}: {halt.reason}"
            )
        for key in self.keys:
            lines.append(
                f"  {format_key(key.key)}: {key.consecutive_failures}/{self.threshold} "
                f"consecutive, {key.failures} failures, {key.successes} successes"
            )
        if self.history:
            last = self.history[-1]
            lines.append(
                f"  last failure {last.at.isoformat(timespec='seconds')} "
                f"{format_key(last.key)}: {last.exception_type}: {last.message}"
            )
        if not self.halts:
            lines.append("  no halt in force")
        return "\n".join(lines)


@dataclass(slots=True)
class _KeyState:
    consecutive: int = 0
    failures: int = 0
    successes: int = 0
    halts: int = 0
    last_failure_clock: float | None = None
    last_failure_at: datetime | None = None


@dataclass(slots=True)
class _Tracked:
    """What a failure changed, to report after the lock is released."""

    record: FailureRecord
    halt: Halt | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


class FailureTracker:
    """Consecutive failures per key, halts at a threshold, a guard that refuses halted work.

    ``threshold`` defaults to ``FAULTLENS_TRACKER_THRESHOLD`` (3), ``history`` (the
    number of failures kept for :meth:`status`) to ``FAULTLENS_TRACKER_HISTORY``
    (100). ``on_halt`` / ``on_resume`` callbacks receive the
    :class:`~faultlens.resilience.Halt`; they run outside the tracker's lock,
    and one that raises is logged. ``halt_sources`` are further
    :class:`~faultlens.resilience.HaltSource`\\ s the guard consults.

    At most ``max_keys`` keys (default 10,000) are tracked: beyond that the
    least recently created keys without a halt are forgotten — keys with no
    consecutive failures first — so a high-cardinality key (a user id, an order
    id) cannot grow memory or metric cardinality without bound. Halted keys are
    never forgotten.

    Invalid settings raise one ``ValueError`` naming every problem.
    """

    def __init__(
        self,
        name: str,
        *,
        threshold: int | None = None,
        reset_window: float | None = None,
        history: int | None = None,
        on_halt: Iterable[HaltCallback] = (),
        on_resume: Iterable[HaltCallback] = (),
        state_file: str | os.PathLike[str] | None = None,
        halt_sources: Iterable[HaltSource] = (),
        record: bool = True,
        meter_provider: MeterProvider | None = None,
        register: bool = True,
        max_keys: int = 10_000,
    ) -> None:
        env = defaults()
        problems = Problems(f"FailureTracker {name!r}")
        problems.check(isinstance(name, str) and bool(name), "name must be a non-empty string")
        limit = env.tracker_threshold if threshold is None else threshold
        problems.integer("threshold", limit, 1)
        problems.positive("reset_window", reset_window)
        keep = env.tracker_history if history is None else history
        problems.integer("history", keep, 0)
        problems.integer("max_keys", max_keys, 1)
        sources = tuple(halt_sources)
        for source in sources:
            problems.check(
                isinstance(source, HaltSource), f"{source!r} is not a HaltSource (no halt_for)"
            )
        problems.raise_if_any()

        self.name = name
        self.threshold = limit
        self.reset_window = reset_window
        self._on_halt = tuple(on_halt)
        self._on_resume = tuple(on_resume)
        self._sources: tuple[HaltSource, ...] = sources
        self._record = record
        # Fake ones in faultlens' tests (_testing.clocks): monotonic for reset_window,
        # wall for timestamps.
        self._clock = CLOCKS.monotonic
        self._wall_clock = CLOCKS.wall
        self._lock = threading.Lock()
        self._persist_lock = threading.Lock()
        self._max_keys = max_keys
        self._keys: dict[Key, _KeyState] = {}
        self._halts: dict[Key, Halt] = {}
        self._history: deque[FailureRecord] = deque(maxlen=keep)
        self._refused = metrics.Tally()
        self._file = HaltFile(state_file, name) if state_file is not None else None
        if self._file is not None:
            for halt in self._file.load():
                self._halts[halt.key] = halt
                self._keys.setdefault(halt.key, _KeyState())
        metrics.attach("tracker", self, meter_provider)
        if register:
            report.register(self)

    def __repr__(self) -> str:
        return f"<FailureTracker {self.name!r} halts={len(self._halts)}>"

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), tz=timezone.utc)

    # -- recording -------------------------------------------------------------------------

    def record_failure(
        self, exc: BaseException, key: KeyArg = None, *, handled: bool = True
    ) -> FailureRecord:
        """Count a failure of ``key``; halt the key if its count reaches the threshold.

        ``handled`` is how the failure is recorded (False when the exception goes
        on to escape, as in :meth:`track`). Returns the history entry. Raises
        ``TypeError`` for a malformed key.
        """
        normalized = make_key(key)
        now_clock = self._clock()
        at = self._now()
        message = safe_message(exc)
        if runtime_settings().redact:
            message = redactor().redact(message)
        if len(message) > _MESSAGE_CHARS:
            message = message[:_MESSAGE_CHARS] + "…"
        type_name = qualified_type_name(type(exc))
        with self._lock:
            state = self._state(normalized)
            window = self.reset_window
            last = state.last_failure_clock
            if window is not None and last is not None and now_clock - last > window:
                state.consecutive = 0
            state.consecutive += 1
            state.failures += 1
            state.last_failure_clock = now_clock
            state.last_failure_at = at
            halt = None
            if state.consecutive >= self.threshold and normalized not in self._halts:
                halt = Halt(
                    source=self.name,
                    key=normalized,
                    reason=(
                        f"{state.consecutive} consecutive failures (threshold {self.threshold})"
                    ),
                    since=at,
                    consecutive_failures=state.consecutive,
                    last_error=f"{type_name}: {message}",
                )
                self._start_halt(halt, state)
            entry = FailureRecord(
                dict(normalized), at, type_name, message, state.consecutive, halt is not None
            )
            self._history.append(entry)
            consecutive = state.consecutive
        if self._record:
            record_failure(
                exc,
                handled=handled,
                source="tracker",
                severity_floor="high" if halt is not None else None,
                attributes={
                    **dict(normalized),
                    names.TRACKER_NAME: self.name,
                    names.TRACKER_CONSECUTIVE: consecutive,
                    names.TRACKER_THRESHOLD: self.threshold,
                },
            )
        if halt is not None:
            self._halted(halt)
        return entry

    def record_success(self, key: KeyArg = None) -> None:
        """A success of ``key``: its consecutive count starts again at 0 (a halt stays)."""
        normalized = make_key(key)
        with self._lock:
            state = self._state(normalized)
            state.successes += 1
            state.consecutive = 0

    def _state(self, key: Key) -> _KeyState:
        """The state of ``key``, created if new (lock held); keeps the key count bounded."""
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
            if len(self._keys) > self._max_keys:
                self._forget_keys(keep=key)
        return state

    def _forget_keys(self, keep: Key) -> None:
        """Drop keys down to 90% of ``max_keys``: idle ones first, halted ones never."""
        target = max(1, self._max_keys * 9 // 10)
        for only_idle in (True, False):
            for candidate in list(self._keys):
                if len(self._keys) <= target:
                    return
                if candidate == keep or candidate in self._halts:
                    continue
                if only_idle and self._keys[candidate].consecutive:
                    continue
                del self._keys[candidate]

    # -- halts -----------------------------------------------------------------------------

    def _start_halt(self, halt: Halt, state: _KeyState) -> None:
        """Put ``halt`` in force (lock held); persisted and announced by :meth:`_halted`."""
        self._halts[halt.key] = halt
        state.halts += 1

    def _halted(self, halt: Halt) -> None:
        self._persist()
        event: dict[str, AttributeValue] = {
            **halt.attributes,
            names.TRACKER_NAME: self.name,
            names.TRACKER_REASON: halt.reason,
            names.TRACKER_CONSECUTIVE: halt.consecutive_failures,
        }
        add_span_event(names.TRACKER_HALT_EVENT, event)
        _log.error(
            "faultlens: tracker %r halted %s: %s",
            self.name,
            format_key(halt.attributes),
            halt.reason,
        )
        run_callbacks(self._on_halt, halt, what="tracker on_halt")

    def halt(self, key: KeyArg = None, reason: str = "halted by hand") -> Halt:
        """Halt ``key`` (the empty key: everything) now; returns the halt in force for it."""
        normalized = make_key(key)
        with self._lock:
            existing = self._halts.get(normalized)
            if existing is not None:
                return existing
            state = self._state(normalized)
            halt = Halt(self.name, normalized, reason, self._now(), state.consecutive)
            self._start_halt(halt, state)
        self._halted(halt)
        return halt

    def resume(self, key: KeyArg = None) -> bool:
        """Lift this tracker's halt on exactly ``key``; False if there was none.

        Consecutive counts of the keys it covered start again at 0. Halts held by
        other halt sources are theirs to lift.
        """
        normalized = make_key(key)
        with self._lock:
            halt = self._halts.pop(normalized, None)
            if halt is None:
                return False
            for candidate, state in self._keys.items():
                if covers(normalized, candidate):
                    state.consecutive = 0
        self._persist()
        _log.warning("faultlens: tracker %r resumed %s", self.name, format_key(halt.attributes))
        run_callbacks(self._on_resume, halt, what="tracker on_resume")
        return True

    def resume_all(self) -> int:
        """Lift every halt this tracker holds; returns how many there were."""
        with self._lock:
            keys = list(self._halts)
        return sum(self.resume(dict(key)) for key in keys)

    def _persist(self) -> None:
        if self._file is None:
            return
        # Snapshot and write under one lock so that the last write holds the latest halts.
        with self._persist_lock:
            with self._lock:
                halts = list(self._halts.values())
            try:
                self._file.save(halts)
            except OSError:
                _log.exception(
                    "faultlens: tracker %r could not write its halt state file %s; the halts "
                    "in force will not survive a restart",
                    self.name,
                    self._file.path,
                )

    def add_halt_source(self, source: HaltSource) -> None:
        """Make the guard also consult ``source`` (e.g. a fleet-wide halt guard)."""
        if not isinstance(source, HaltSource):
            raise TypeError(f"faultlens: {source!r} is not a HaltSource (no halt_for method)")
        with self._lock:
            self._sources = (*self._sources, source)

    def remove_halt_source(self, source: HaltSource) -> None:
        """Stop consulting ``source``."""
        with self._lock:
            self._sources = tuple(s for s in self._sources if s is not source)

    def halt_for(self, key: Mapping[str, KeyValue] | None = None) -> Halt | None:
        """This tracker's own halt covering ``key``, or None (the :class:`HaltSource` method)."""
        halts = self._halts
        if not halts:
            return None
        normalized = make_key(key)
        for halt in list(halts.values()):
            if covers(halt.key, normalized):
                return halt
        return None

    def halted(self, key: KeyArg = None) -> Halt | None:
        """The halt in force for ``key`` — this tracker's or a halt source's — or None."""
        own = self.halt_for(key)
        if own is not None:
            return own
        for source in self._sources:
            try:
                found = source.halt_for(dict(key or {}))
            except Exception:
                _log.exception("faultlens: halt source %r failed; treating it as halted", source)
                return Halt(repr(source), make_key(key), "the halt source failed", self._now())
            if found is not None:
                return found
        return None

    def guard(self, key: KeyArg = None) -> None:
        """Raise :class:`~faultlens.resilience.HaltedError` if a halt is in force for ``key``.

        The refusal is counted and recorded (``failure.source=tracker``, category
        ``halted``). A halt source that raises counts as a halt: failing closed.
        """
        if not self._halts and not self._sources:
            make_key(key)  # the same TypeError for a malformed key, halted or not
            return
        halt = self.halted(key)
        if halt is None:
            return
        self._refused.add()
        error = halt.error()
        if self._record:
            record_failure(
                error,
                handled=False,
                source="tracker",
                fingerprint=hash_parts(
                    ("faultlens.tracker.halted", halt.source, format_key(halt.attributes))
                ),
                attributes={**dict(key or {}), names.TRACKER_NAME: self.name},
            )
        raise error

    # -- decorator and context manager -----------------------------------------------------

    def track(self, key: KeyArg | Callable[..., Mapping[str, KeyValue]] = None) -> Callable[[F], F]:
        """Decorator: guard, call, then count a success or (escaping) failure.

        ``key`` is a mapping, or a callable receiving the call's arguments that
        returns one.
        """

        def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> KeyArg:
            return key(*args, **kwargs) if callable(key) else key

        def decorate(func: F) -> F:
            if callable_kind(func, "FailureTracker.track") == "async":

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    async with self.tracking(resolve(args, kwargs)):
                        return await func(*args, **kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.tracking(resolve(args, kwargs)):
                    return func(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate

    def tracking(self, key: KeyArg = None) -> Tracking:
        """Context manager (also ``async with``): guard on entry, count the outcome on exit."""
        return Tracking(self, key)

    # -- reporting -------------------------------------------------------------------------

    def status(self) -> TrackerStatus:
        """Halts in force, per-key counts and the failure history."""
        with self._lock:
            keys = tuple(
                KeyStatus(
                    dict(key),
                    state.consecutive,
                    state.failures,
                    state.successes,
                    state.halts,
                    key in self._halts,
                    state.last_failure_at,
                )
                for key, state in sorted(self._keys.items(), key=lambda item: str(item[0]))
            )
            halts = tuple(self._halts.values())
            history = tuple(self._history)
        return TrackerStatus(self.name, self.threshold, halts, keys, history, self._refused.value)

    def health(self) -> report.ComponentHealth:
        """``unhealthy`` while a halt is in force, ``degraded`` while a key has
        consecutive failures."""
        status = self.status()
        verdict: report.HealthStatus = "healthy"
        if status.halts:
            verdict = "unhealthy"
        elif any(key.consecutive_failures for key in status.keys):
            verdict = "degraded"
        return report.ComponentHealth(
            "tracker",
            self.name,
            verdict,
            {
                "halts": [halt.as_dict() for halt in status.halts],
                "failing_keys": [key.as_dict() for key in status.keys if key.consecutive_failures],
            },
        )

    def observe(self, instrument: str) -> Iterable[metrics.Point]:
        """Points of ``instrument`` (see :data:`faultlens.resilience._metrics.INSTRUMENTS`)."""
        if instrument == "faultlens.tracker.refused":
            return [(self._refused.value, {names.TRACKER_NAME: self.name})]
        with self._lock:
            rows = [(key, state, key in self._halts) for key, state in self._keys.items()]
        if instrument == "faultlens.tracker.halted":
            return [
                (int(halted), {**dict(key), names.TRACKER_NAME: self.name})
                for key, _, halted in rows
            ]
        field_name = _KEY_FIELDS.get(instrument)
        if field_name is None:
            return ()
        return [
            (getattr(state, field_name), {**dict(key), names.TRACKER_NAME: self.name})
            for key, state, _ in rows
        ]


class Tracking:
    """``with tracker.tracking(key):`` — see :meth:`FailureTracker.tracking`."""

    __slots__ = ("_key", "_tracker")

    def __init__(self, tracker: FailureTracker, key: KeyArg) -> None:
        self._tracker = tracker
        self._key = key

    def __enter__(self) -> Tracking:
        self._tracker.guard(self._key)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is None:
            self._tracker.record_success(self._key)
        elif isinstance(exc, Exception):
            self._tracker.record_failure(exc, self._key, handled=False)
        return False

    async def __aenter__(self) -> Tracking:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)
