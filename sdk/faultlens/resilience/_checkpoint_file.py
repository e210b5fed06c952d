"""A checkpoint on disk: its JSON format, and the lock that gives one process a job.

The file (one per job) is JSON — never pickle: a state file must not be able to
run code when it is read::

    {"format":"faultlens.checkpoint","version":1,"job":"import-orders","sequence":42,
     "saved_at":"2026-05-09T07:35:25.120000+00:00","state":{"position":1200}}

It is replaced atomically and durably on every save (:mod:`._durable`, shared
with the tracker's halt state file). Reading a file that is not valid JSON, is
not a checkpoint, has a version this code does not know, or belongs to another
job raises :class:`~faultlens.resilience.CheckpointError` naming the file and
the problem: restarting the job from zero without a word would be the silent
failure this library exists to prevent.

**Processes.** :class:`JobFile` takes an exclusive advisory lock
(``flock``) on ``<file>.lock`` the first time the process reads, writes or
removes the checkpoint, and keeps it until every :class:`Checkpoint` of the
process that used the file has released it. A second process that tries to use
the same job gets a ``CheckpointError`` naming the process that holds it. The
kernel drops the lock when its process dies, ``kill -9`` included, so a
restarted worker takes over at once. Holding the lock also makes it safe to
delete the temporary files a killed writer left behind. The lock is advisory:
only faultlens honours it. Where the lock file cannot be created at all (a
read-only directory) the job runs unlocked, and the write that follows reports
the real problem.

**Threads.** All objects of one process that use the same file share one
:class:`JobFile` (by absolute path), whose lock serializes their writes: the
file always holds one complete state, the one written last, and its sequence
number counts every write.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from faultlens.resilience._durable import remove_file, remove_temporaries, replace_file
from faultlens.resilience.errors import CheckpointError

if sys.platform != "win32":
    import fcntl

FORMAT: Final = "faultlens.checkpoint"
VERSION: Final = 1
_ADVICE: Final = "fix or remove the file (without it the job starts again from the beginning)"


@dataclass(frozen=True, slots=True)
class Saved:
    """A checkpoint read back: the state, its sequence number and when it was written."""

    state: Any
    sequence: int
    saved_at: float  # epoch seconds


def encode_state(job: str, state: Any) -> str:
    """``state`` as compact, strict JSON (no NaN or infinity, ASCII only).

    Raises ``TypeError`` for None (restore's "no checkpoint") and for values
    JSON cannot hold, ``ValueError`` for NaN/infinity and circular references.
    """
    if state is None:
        raise TypeError(
            f"faultlens: checkpoint {job!r}: the state must not be None "
            "(restore() returns None when there is no checkpoint)"
        )
    try:
        return json.dumps(state, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"faultlens: checkpoint {job!r}: the state is not JSON-serializable: {exc}"
        ) from exc
    except RecursionError as exc:
        raise ValueError(
            f"faultlens: checkpoint {job!r}: the state is nested too deeply for JSON"
        ) from exc


def encode(job: str, sequence: int, saved_at: float, state_json: str) -> bytes:
    """The whole file for ``state_json`` (already encoded by :func:`encode_state`)."""
    when = datetime.fromtimestamp(saved_at, tz=timezone.utc).isoformat()
    head = json.dumps(
        {"format": FORMAT, "version": VERSION, "job": job, "sequence": sequence, "saved_at": when},
        separators=(",", ":"),
    )
    return f'{head[:-1]},"state":{state_json}}}\n'.encode("ascii")


def decode(job: str, path: str, data: bytes) -> Saved:
    """Parse a checkpoint file of ``job``; raise ``CheckpointError`` saying what is wrong."""

    def unusable(problem: str) -> CheckpointError:
        return CheckpointError(job, path, f"{problem}; {_ADVICE}")

    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        what = "empty" if not data.strip() else f"not valid JSON ({exc})"
        raise unusable(f"the file is {what}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise unusable(f'it is not a faultlens checkpoint (no "format": "{FORMAT}")')
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise unusable(f"its version field is missing or invalid ({version!r})")
    if version > VERSION:
        raise unusable(
            f"it was written by a newer faultlens (format version {version}; this one "
            f"reads version {VERSION})"
        )
    owner = document.get("job")
    if owner != job:
        raise unusable(f"it belongs to job {owner!r}, not {job!r}")
    if "state" not in document or document["state"] is None:
        raise unusable("it holds no state")
    sequence = document.get("sequence")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise unusable(f"its sequence field is invalid ({sequence!r})")
    try:
        saved_at = datetime.fromisoformat(str(document.get("saved_at")))
    except ValueError as exc:
        raise unusable(f"its saved_at field is not an ISO 8601 time ({exc})") from exc
    if saved_at.tzinfo is None:
        raise unusable("its saved_at field has no time zone")
    return Saved(document["state"], sequence, saved_at.timestamp())


class JobFile:
    """One checkpoint file as this process uses it: a write lock, the process lock, a sequence.

    Every method takes the write lock itself. ``owner`` identifies the object
    using the file (its ``id``); the process lock is held from the first
    operation of any owner until the last one :meth:`release`\\ s it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        # Re-entrant: a finalizer releasing another owner may run inside a write.
        self.lock = threading.RLock()
        self.sequence = 0
        self._fd: int | None = None
        self._owners: set[int] = set()

    def write(self, owner: int, job: str, state_json: str, saved_at: float) -> int:
        """Replace the checkpoint with ``state_json``; returns its sequence number.

        Raises ``OSError`` when it cannot be written (the previous checkpoint is
        intact) and ``CheckpointError`` when another process holds the job.
        """
        with self.lock:
            self._claim(owner, job)
            sequence = self.sequence + 1
            replace_file(self.path, encode(job, sequence, saved_at, state_json))
            self.sequence = sequence
            return sequence

    def read(self, owner: int, job: str) -> Saved | None:
        """The checkpoint, or None if there is none; raises ``CheckpointError``."""
        with self.lock:
            self._claim(owner, job)
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise CheckpointError(
                    job, str(self.path), f"it cannot be read ({exc}); {_ADVICE}"
                ) from exc
            saved = decode(job, str(self.path), data)
            self.sequence = max(self.sequence, saved.sequence)
            return saved

    def remove(self, owner: int, job: str) -> bool:
        """Delete the checkpoint (False if there was none).

        Raises ``OSError`` or ``CheckpointError`` (another process holds the job).
        """
        with self.lock:
            self._claim(owner, job)
            return remove_file(self.path)

    def release(self, owner: int) -> None:
        """``owner`` is done with the file; the last one to go drops the process lock."""
        with self.lock:
            self._owners.discard(owner)
            if self._owners or self._fd is None:
                return
            # Unlink before unlocking: a process that opened the old lock file checks
            # that it locked the file still at that path and otherwise tries again.
            with contextlib.suppress(OSError):
                os.unlink(self.lock_path)
            os.close(self._fd)
            self._fd = None

    def _claim(self, owner: int, job: str) -> None:
        if self._fd is None:
            self._fd = _lock(self.path, self.lock_path, job)
            if self._fd is not None:
                remove_temporaries(self.path)
        self._owners.add(owner)

    def after_fork_in_child(self) -> None:
        """The child does not hold the parent's lock (and must not drop it)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
        self._owners.clear()
        self.lock = threading.RLock()


def _lock(path: Path, lock_path: Path, job: str) -> int | None:
    """A descriptor holding the exclusive lock of ``lock_path``, or None where no lock
    file can be made; raises ``CheckpointError`` when another process holds it."""
    if sys.platform == "win32":
        return None
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise CheckpointError(
                job,
                str(path),
                f"another process{holder} is running this job (it holds {lock_path}); "
                "one job runs in one process at a time: wait for it or stop it",
            ) from None
        except OSError:
            os.close(fd)
            return None
        try:
            current = os.stat(lock_path)
            opened = os.fstat(fd)
            same = (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)
        except OSError:
            same = False
        if same:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)  # the holder removed that lock file as we opened it: try the new one


def _holder(fd: int) -> str:
    """`` (pid N)`` from a lock file's content, or nothing."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {text})" if text.isdigit() else ""


class _Registry:
    """The :class:`JobFile`\\ s of this process by absolute path (weakly held)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: weakref.WeakValueDictionary[str, JobFile] = weakref.WeakValueDictionary()

    def get(self, path: Path) -> JobFile:
        key = os.path.abspath(path)
        with self.lock:
            found = self.files.get(key)
            if found is None:
                found = self.files[key] = JobFile(Path(key))
            return found

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        for found in list(self.files.values()):
            found.after_fork_in_child()


_registry = _Registry()
#: The process's one :class:`JobFile` for a path.
job_file = _registry.get

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_registry.after_fork_in_child)
