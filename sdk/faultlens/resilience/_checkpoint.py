"""Checkpoints: a long job resumes where it stopped after a crash, a halt or an error.

::

    job = Checkpoint("import-orders")              # ~/.local/state/faultlens/checkpoints/
    with job:                                      # saves on error, clears on success
        state = job.restore() or {"position": 0}
        for i in range(state["position"], len(orders)):
            handle(orders[i])
            job.save({"position": i + 1})          # written at most every 10 s

``save(state)`` records the latest state — the work *done* so far — and writes
it when the interval has passed since the last write (the first call writes at
once); ``force=True`` writes now. The not-due path costs one attribute store
and one flag test: a thread of :mod:`._alarms` raises the flag when the
interval is over, so ``save`` does not even read the clock. ``restore()``
returns the last saved state or None, ``clear()`` deletes it when the job is
finished. ``asave``/``arestore``/``aclear``/``aflush`` and ``async with`` do
the file work in a thread (``asyncio.to_thread``) so the event loop never waits
for an ``fsync``.

**Delivery.** After a crash the job resumes from the last *written* state: the
items done between that write and the crash are done again — at least once,
never skipped (provided ``save`` is given the state after the work it
describes). It is exactly once when the side effects are idempotent, or when
their own position is saved with the state (the output's length, say, truncated
back to it on resume).

**Failures.** A write that fails (disk full, read-only directory, …) is
recorded through faultlens once per streak (``failure.source=checkpoint``,
handled: the job goes on), logged, counted in ``faultlens.checkpoint.saves``
and shown as ``degraded`` by :func:`faultlens.resilience.health`; the next
attempt comes one interval later. A checkpoint that cannot be used raises
:class:`~faultlens.resilience.CheckpointError` from ``restore``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal

from opentelemetry.metrics import MeterProvider
from opentelemetry.util.types import AttributeValue

from faultlens._internal_errors import report_internal_error
from faultlens._recorder import record_failure
from faultlens.resilience import _metrics as metrics
from faultlens.resilience import _names as names
from faultlens.resilience import _report as report
from faultlens.resilience._alarms import ALARMS
from faultlens.resilience._checkpoint_file import Saved, encode_state, job_file
from faultlens.resilience._settings import Problems, defaults
from faultlens.resilience._support import add_span_event
from faultlens.resilience.errors import CheckpointError

_log = logging.getLogger("faultlens")


class _Clocks:
    """The clocks checkpoints read; :func:`set_testing` replaces them."""

    def __init__(self) -> None:
        self.monotonic: Callable[[], float] = time.monotonic
        self.wall: Callable[[], float] = time.time
        self.testing = False


_clocks = _Clocks()
_live: weakref.WeakSet[Checkpoint] = weakref.WeakSet()

_NOTHING: Final[Any] = object()
_POSITION_CHARS = 256
#: What ``checkpoint.position`` can be (bool included, as an int).
Position = str | int | float
PositionOf = Callable[[Any], object]


@contextlib.contextmanager
def set_testing(
    *, clock: Callable[[], float] | None = None, wall_clock: Callable[[], float] | None = None
) -> Iterator[None]:
    """For tests: checkpoints read ``clock`` (monotonic seconds: the interval) and
    ``wall_clock`` (epoch seconds: ``saved_at``, ages, health) instead of the real
    clocks, and compare the clock on every ``save`` instead of waiting for an alarm.

    A context manager, stamina-style, so that test hooks stay out of the public
    signature. Not thread-safe against itself; restores the previous setting.
    """
    previous = (_clocks.monotonic, _clocks.wall, _clocks.testing)
    _clocks.monotonic = clock or time.monotonic
    _clocks.wall = wall_clock or time.time
    _clocks.testing = True
    _raise_every_flag()
    try:
        yield
    finally:
        _clocks.monotonic, _clocks.wall, _clocks.testing = previous
        _raise_every_flag()


def _raise_every_flag() -> None:
    for checkpoint in list(_live):
        checkpoint._due = True


def _after_fork_in_child() -> None:
    """The parent's alarms are gone and a lock another thread held stays held: start
    afresh (each checkpoint's next ``save`` compares the clock and re-arms)."""
    for checkpoint in list(_live):
        checkpoint._gate = threading.Lock()
        checkpoint._alarm_at = None
        checkpoint._due = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def default_directory() -> Path:
    """``FAULTLENS_CHECKPOINT_DIR``, else ``$XDG_STATE_HOME/faultlens/checkpoints``
    (``~/.local/state/faultlens/checkpoints``)."""
    configured = os.environ.get("FAULTLENS_CHECKPOINT_DIR")
    if configured:
        return Path(configured)
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(state_home) / "faultlens" / "checkpoints"


def default_position(state: Any) -> Position | None:
    """The state itself if it is a str/int/float/bool, else its ``"position"`` item if
    that is one, else None."""
    if isinstance(state, Mapping):
        state = state.get("position")
    if isinstance(state, (str, int, float)):
        return state
    return None


@dataclass(frozen=True, slots=True)
class _Written:
    sequence: int
    saved_at: float


_Problem = tuple[str, type[BaseException], int | None]


class Checkpoint:
    """The saved progress of one named job; see the module docstring.

    ``path`` is the file (default: ``<directory>/<name, URL-quoted>.json`` with
    ``directory`` defaulting to ``FAULTLENS_CHECKPOINT_DIR`` or
    ``~/.local/state/faultlens/checkpoints``). ``interval`` (seconds, default
    ``FAULTLENS_CHECKPOINT_INTERVAL``, 10; 0 writes on every ``save``) bounds how
    often ``save`` writes. ``stale_after`` (default: the interval, at least 1 s)
    is the age past which a running job's checkpoint makes the health report
    ``degraded``. ``position`` maps a state to the value shown as
    ``checkpoint.position`` on span events, failures and in the health report
    (default :func:`default_position`; anything but a str, int or float is left
    out). ``record=False`` stops recording failures.

    Invalid settings raise one ``ValueError`` naming every problem.
    """

    __slots__ = (
        "__weakref__",
        "_active_since",
        "_alarm_at",
        "_due",
        "_due_at",
        "_failed",
        "_file",
        "_gate",
        "_last_error",
        "_latest",
        "_position",
        "_position_of",
        "_problem",
        "_record",
        "_restores",
        "_saves",
        "_sequence",
        "_written_at",
        "interval",
        "name",
        "path",
        "stale_after",
    )

    def __init__(
        self,
        name: str,
        *,
        path: str | os.PathLike[str] | None = None,
        directory: str | os.PathLike[str] | None = None,
        interval: float | None = None,
        stale_after: float | None = None,
        position: PositionOf | None = None,
        record: bool = True,
        meter_provider: MeterProvider | None = None,
        register: bool = True,
    ) -> None:
        problems = Problems(f"Checkpoint {name!r}")
        problems.check(isinstance(name, str) and bool(name), "name must be a non-empty string")
        every = defaults().checkpoint_interval if interval is None else interval
        problems.at_least("interval", every, 0)
        problems.positive("stale_after", stale_after)
        problems.check(path is None or directory is None, "give path or directory, not both")
        problems.check(position is None or callable(position), "position must be callable")
        problems.raise_if_any()

        self.name = name
        if path is None:
            folder = default_directory() if directory is None else Path(directory)
            path = folder / f"{urllib.parse.quote(name, safe='')}.json"
        self.path = Path(os.path.abspath(path))
        self.interval = float(every)
        self.stale_after = float(stale_after) if stale_after is not None else max(every, 1.0)
        self._position_of: PositionOf = position or default_position
        self._record = record
        self._file = job_file(self.path)
        self._gate = threading.Lock()
        self._latest: Any = _NOTHING
        self._due = True  # the first save writes at once
        self._due_at = -math.inf
        self._alarm_at: float | None = None
        self._saves: dict[str, metrics.Tally] = {o: metrics.Tally() for o in names.SAVE_OUTCOMES}
        self._restores: dict[str, metrics.Tally] = {
            outcome: metrics.Tally() for outcome in names.RESTORE_OUTCOMES
        }
        self._failed = self._saves["failure"]
        self._problem: _Problem | None = None
        self._last_error: str | None = None
        self._written_at: float | None = None
        self._position: Position | None = None
        self._sequence = 0
        self._active_since: float | None = None
        weakref.finalize(self, self._file.release, id(self))
        _live.add(self)
        metrics.attach("checkpoint", self, meter_provider)
        if register:
            report.register(self)

    def __repr__(self) -> str:
        return f"<Checkpoint {self.name!r} {str(self.path)!r}>"

    # -- save ------------------------------------------------------------------------------

    def save(self, state: Any, force: bool = False) -> bool:
        """Remember ``state`` (the work done so far); write it if the interval has
        passed since the last write, or at once with ``force=True``.

        Returns True if it was written now. A write that fails is recorded and
        logged once per streak and retried one interval later; ``save`` does not
        raise for it. A state that is None or not JSON-serializable raises
        ``TypeError``/``ValueError`` when it is written. Thread-safe.
        """
        self._latest = state
        if force or self._due:
            return self._save(state, force)
        return False

    def _save(self, state: Any, force: bool) -> bool:
        if not self._reserve(force):
            return False
        body = encode_state(self.name, state)
        return self._saved(self._write(body), state, force)

    async def asave(self, state: Any, force: bool = False) -> bool:
        """:meth:`save` for coroutines: the write runs in a thread, never on the loop."""
        self._latest = state
        if not (force or self._due) or not self._reserve(force):
            return False
        body = encode_state(self.name, state)
        return self._saved(await asyncio.to_thread(self._write, body), state, force)

    def flush(self) -> bool:
        """Write the latest state given to :meth:`save` now, if there is one.

        For the moments that matter: an error (the context manager calls it), a
        halt (``FailureTracker(on_halt=[lambda halt: job.flush()])``), a SIGTERM
        handler. Never raises: a state that cannot be encoded is recorded.
        """
        state = self._latest
        if state is _NOTHING:
            return False
        try:
            return self._save(state, True)
        except (TypeError, ValueError) as exc:
            self._fail("save", exc)
            return False

    async def aflush(self) -> bool:
        """:meth:`flush` with the write in a thread."""
        state = self._latest
        if state is _NOTHING:
            return False
        try:
            return await self.asave(state, True)
        except (TypeError, ValueError) as exc:
            self._fail("save", exc)
            return False

    def _reserve(self, force: bool) -> bool:
        """Claim the write (the interval has passed, or forced) and re-arm the flag."""
        now = _clocks.monotonic()
        with self._gate:
            if self._active_since is None:
                self._active_since = _clocks.wall()
            due = force or now >= self._due_at
            if due:
                self._due_at = now + self.interval
            self._arm()
            return due

    def _arm(self) -> None:
        """Lower the due flag until ``_due_at`` (gate held); with a zero interval or
        under :func:`set_testing` it stays up and ``save`` compares the clock."""
        if _clocks.testing or self.interval == 0:
            self._due = True
            return
        self._due = False
        if self._alarm_at is None:
            self._alarm_at = self._due_at
            ALARMS.schedule(self._due_at, self)

    def wake(self, now: float) -> float | None:
        """Alarm callback (:class:`._alarms.Wakeable`): raise the flag once due."""
        with self._gate:
            if now >= self._due_at:
                self._alarm_at = None
                self._due = True
                return None
            self._alarm_at = self._due_at
            return self._due_at

    def _write(self, body: str) -> _Written | OSError | CheckpointError:
        """The file work of a save (in a thread for :meth:`asave`); never raises them."""
        saved_at = _clocks.wall()
        try:
            return _Written(self._file.write(id(self), self.name, body, saved_at), saved_at)
        except (OSError, CheckpointError) as exc:
            return exc

    def _saved(
        self, outcome: _Written | OSError | CheckpointError, state: Any, force: bool
    ) -> bool:
        if not isinstance(outcome, _Written):
            self._fail("save", outcome, state)
            return False
        self._saves["success"].add()
        position = self._position_for(state)
        self._written_at = outcome.saved_at
        self._position = position
        self._sequence = outcome.sequence
        self._recovered("save")
        add_span_event(
            names.CHECKPOINT_SAVE_EVENT,
            self._attributes(
                position,
                {names.CHECKPOINT_SEQUENCE: outcome.sequence, names.CHECKPOINT_FORCED: force},
            ),
        )
        return True

    # -- restore ---------------------------------------------------------------------------

    def restore(self) -> Any | None:
        """The last saved state, or None if the job has no checkpoint.

        Raises :class:`~faultlens.resilience.CheckpointError` (recorded) when the
        file cannot be read, is corrupt, was written by a newer faultlens or for
        another job, or another process is running this job: never a silent
        restart from zero.
        """
        self._activate()
        try:
            saved = self._file.read(id(self), self.name)
        except CheckpointError as exc:
            self._restore_failed(exc)
            raise
        return self._restored(saved)

    async def arestore(self) -> Any | None:
        """:meth:`restore` with the read in a thread."""
        self._activate()
        try:
            saved = await asyncio.to_thread(self._file.read, id(self), self.name)
        except CheckpointError as exc:
            self._restore_failed(exc)
            raise
        return self._restored(saved)

    def _restored(self, saved: Saved | None) -> Any | None:
        attributes: dict[str, AttributeValue] = {names.CHECKPOINT_FOUND: saved is not None}
        if saved is None:
            self._restores["empty"].add()
            self._recovered("restore")
            add_span_event(names.CHECKPOINT_RESTORE_EVENT, self._attributes(None, attributes))
            return None
        self._restores["success"].add()
        position = self._position_for(saved.state)
        self._latest = saved.state
        self._written_at = saved.saved_at
        self._position = position
        self._sequence = saved.sequence
        self._recovered("restore")
        attributes[names.CHECKPOINT_SEQUENCE] = saved.sequence
        attributes[names.CHECKPOINT_AGE] = max(0.0, _clocks.wall() - saved.saved_at)
        add_span_event(names.CHECKPOINT_RESTORE_EVENT, self._attributes(position, attributes))
        return saved.state

    def _restore_failed(self, exc: CheckpointError) -> None:
        self._restores["failure"].add()
        self._fail("restore", exc)

    # -- clear, close, context manager -----------------------------------------------------

    def clear(self) -> bool:
        """The job is finished: delete its checkpoint and let other processes run it.

        Returns False (recorded and logged, never raised) when the file cannot
        be deleted — the next run would then resume from it.
        """
        return self._cleared(self._remove())

    async def aclear(self) -> bool:
        """:meth:`clear` with the file work in a thread."""
        return self._cleared(await asyncio.to_thread(self._remove))

    def _remove(self) -> bool | OSError | CheckpointError:
        try:
            return self._file.remove(id(self), self.name)
        except (OSError, CheckpointError) as exc:
            return exc

    def _cleared(self, outcome: bool | OSError | CheckpointError) -> bool:
        if not isinstance(outcome, bool):
            self._fail("clear", outcome, self._latest)
            return False
        with self._gate:
            self._latest = _NOTHING
            self._written_at = None
            self._position = None
            self._due_at = -math.inf
            self._due = True
        self._recovered("clear")
        self._recovered("save")
        add_span_event(names.CHECKPOINT_CLEAR_EVENT, self._attributes(None, {}))
        self.close()
        return True

    def close(self) -> None:
        """This process stops working on the job (the checkpoint stays): its lock is
        released and the health report no longer expects fresh checkpoints."""
        self._active_since = None
        self._file.release(id(self))

    def _activate(self) -> None:
        if self._active_since is None:
            self._active_since = _clocks.wall()

    def __enter__(self) -> Checkpoint:
        self._activate()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        try:
            if exc is None:
                self.clear()
            elif self.flush():
                self._log_stopped(exc)
        finally:
            self.close()
        return False

    async def __aenter__(self) -> Checkpoint:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        try:
            if exc is None:
                await self.aclear()
            elif await self.aflush():
                self._log_stopped(exc)
        finally:
            self.close()
        return False

    def _log_stopped(self, exc: BaseException) -> None:
        _log.warning(
            "faultlens: job %r stopped by %s; checkpoint saved at position %s, where it resumes",
            self.name,
            type(exc).__name__,
            self._position,
        )

    # -- failures --------------------------------------------------------------------------

    def _fail(self, operation: str, exc: BaseException, state: Any = _NOTHING) -> None:
        """Count, log and record a failed operation, once per streak of the same error."""
        if operation == "save":
            self._failed.add()
        error = exc
        if isinstance(exc, OSError):
            done = {"save": "saved", "clear": "cleared"}.get(operation, "read")
            error = _described(exc, f"checkpoint {self.name!r} not {done}", self.path)
        problem: _Problem = (operation, type(exc), getattr(exc, "errno", None))
        with self._gate:
            self._last_error = f"{type(error).__name__}: {error}"
            if problem == self._problem:
                return
            self._problem = problem
        position = self._position if state is _NOTHING else self._position_for(state)
        if operation == "restore":
            _log.error("faultlens: %s", error)
        else:
            resume = (
                "from the beginning"
                if self._written_at is None
                else f"from position {self._position} (the last checkpoint)"
            )
            _log.error(
                "faultlens: %s; the job goes on, but a crash now would resume it %s; "
                "further failures like this are counted, not logged",
                self._last_error,
                resume,
            )
        if self._record:
            attributes = self._attributes(position, {names.CHECKPOINT_PATH: str(self.path)})
            record_failure(
                error,
                handled=operation != "restore",
                source="checkpoint",
                attributes=attributes,
            )

    def _recovered(self, operation: str) -> None:
        problem = self._problem
        if problem is None or problem[0] != operation:
            return
        self._problem = None
        self._last_error = None
        _log.warning(
            "faultlens: checkpoint %r: %s works again (%d failed saves so far)",
            self.name,
            operation,
            self._failed.value,
        )

    # -- reporting -------------------------------------------------------------------------

    def _position_for(self, state: Any) -> Position | None:
        try:
            value = self._position_of(state)
        except Exception:
            report_internal_error(f"checkpoint {self.name!r} position")
            return None
        if isinstance(value, str) and len(value) > _POSITION_CHARS:
            return value[:_POSITION_CHARS] + "…"
        return value if isinstance(value, (str, int, float)) else None

    def _attributes(
        self, position: Position | None, extra: Mapping[str, AttributeValue]
    ) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {names.CHECKPOINT_NAME: self.name, **extra}
        if position is not None:
            attributes[names.CHECKPOINT_POSITION] = position
        return attributes

    def age(self) -> float | None:
        """Seconds since the checkpoint this object knows (written or restored) was
        written, or None if there is none."""
        written = self._written_at
        return None if written is None else max(0.0, _clocks.wall() - written)

    def health(self) -> report.ComponentHealth:
        """``degraded`` when the last write, clear or restore failed, or while the job
        runs (between its first use and ``clear``/``close``) and no checkpoint has
        been written for longer than ``stale_after``; ``healthy`` otherwise."""
        now = _clocks.wall()
        active_since = self._active_since
        written = self._written_at
        verdict: report.HealthStatus = "healthy"
        if self._problem is not None:
            verdict = "degraded"
        elif active_since is not None:
            fresh_since = active_since if written is None else max(written, active_since)
            if now - fresh_since > self.stale_after:
                verdict = "degraded"
        return report.ComponentHealth(
            "checkpoint",
            self.name,
            verdict,
            {
                "path": str(self.path),
                "running": active_since is not None,
                "position": self._position,
                "sequence": self._sequence,
                "age_s": None if written is None else max(0.0, now - written),
                "interval_s": self.interval,
                "stale_after_s": self.stale_after,
                "saves": self._saves["success"].value,
                "failed_saves": self._failed.value,
                "last_error": self._last_error,
            },
        )

    def observe(self, instrument: str) -> Iterable[metrics.Point]:
        """Points of ``instrument`` (see :data:`faultlens.resilience._metrics.INSTRUMENTS`)."""
        if instrument == "faultlens.checkpoint.age":
            age = self.age()
            return () if age is None else [(age, {names.CHECKPOINT_NAME: self.name})]
        tallies: dict[str, metrics.Tally]
        if instrument == "faultlens.checkpoint.saves":
            tallies = self._saves
        elif instrument == "faultlens.checkpoint.restores":
            tallies = self._restores
        else:
            return ()
        return [
            (tally.value, {names.CHECKPOINT_NAME: self.name, names.CHECKPOINT_OUTCOME: outcome})
            for outcome, tally in tallies.items()
        ]


def _described(exc: OSError, what: str, path: Path) -> OSError:
    """An ``OSError`` of the same errno (and subclass) that says which checkpoint and
    file it concerns, chained to ``exc``."""
    reason = exc.strerror or str(exc)
    try:
        if exc.errno is None:
            raise OSError(f"{what}: {reason} ({path})") from exc
        raise OSError(exc.errno, f"{what}: {reason}", str(path)) from exc
    except OSError as described:
        return described
