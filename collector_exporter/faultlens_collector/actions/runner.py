"""Run one hook process: bounded in time, in output, and in what it leaves behind.

:func:`run_process` starts the program in a new session (so it leads its own
process group), writes the payload to its stdin, keeps only the last
``output_limit`` bytes of its combined stdout and stderr (read incrementally: a
hook that floods its output never grows memory), and when it exceeds its
timeout sends ``SIGTERM`` to the whole group, then ``SIGKILL`` after
``kill_grace``. When the hook exits on its own, whatever it left running in its
group is killed too, so no hook leaves children behind (a child that starts its
own session on purpose escapes any process group; that is documented).

The argument list is passed to the OS as is: no shell ever sees it.
POSIX only (Linux, macOS).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

#: How often the exit of a hook is polled where no pidfd exists, and how often
#: a cancellation is noticed.
POLL_INTERVAL: Final = 0.05
#: How long output is still read after the hook's process group was killed.
_DRAIN_SECONDS: Final = 0.5
_CHUNK: Final = 65536


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """How a hook process ended.

    ``exit_code`` is the process's exit status (negative: ended by that signal),
    or None when it could not be started (``error`` says why). ``output_bytes``
    counts everything it wrote; ``output_tail`` holds the last bytes of it.
    """

    exit_code: int | None
    timed_out: bool
    cancelled: bool
    duration: float
    output_tail: str
    output_bytes: int
    error: str | None = None


class _Tail:
    """The last ``limit`` bytes of a stream, whatever its length."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._buffer = bytearray()

    def add(self, data: bytes) -> None:
        self.total += len(data)
        self._buffer += data
        if len(self._buffer) > self.limit:
            del self._buffer[: len(self._buffer) - self.limit]

    def text(self) -> str:
        return self._buffer.decode("utf-8", errors="replace")


def run_process(
    argv: Sequence[str],
    *,
    stdin: bytes,
    env: Mapping[str, str],
    cwd: str | None,
    timeout: float,
    kill_grace: float = 1.0,
    output_limit: int = 4096,
    cancel: threading.Event | None = None,
) -> ProcessResult:
    """Run ``argv`` to completion or timeout; never raises for anything the hook does."""
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return ProcessResult(
            None, False, False, time.monotonic() - started, "", 0, f"cannot start: {reason}"
        )
    with _Supervisor(process, output_limit) as supervisor:
        outcome = supervisor.run(stdin, started + timeout, cancel)
        if outcome == "exited":
            _kill_group(process.pid, signal.SIGKILL)  # whatever it left behind
        else:
            supervisor.terminate(kill_grace)
        supervisor.drain(time.monotonic() + _DRAIN_SECONDS)
        exit_code = process.wait()
        return ProcessResult(
            exit_code=exit_code,
            timed_out=outcome == "timeout",
            cancelled=outcome == "cancelled",
            duration=time.monotonic() - started,
            output_tail=supervisor.tail.text(),
            output_bytes=supervisor.tail.total,
        )


class _Supervisor:
    """The selector loop over one process: stdin writes, output reads, exit."""

    def __init__(self, process: subprocess.Popen[bytes], output_limit: int) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self.tail = _Tail(output_limit)
        self._selector = selectors.DefaultSelector()
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._out_fd = self._stdout.fileno()
        self._in_fd = self._stdin.fileno()
        os.set_blocking(self._out_fd, False)
        self._selector.register(self._out_fd, selectors.EVENT_READ)
        self._pidfd = _open_pidfd(process.pid)
        if self._pidfd is not None:
            self._selector.register(self._pidfd, selectors.EVENT_READ)
        self._pending = memoryview(b"")
        self._exited = False
        self._output_open = True

    def __enter__(self) -> _Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._selector.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
        for stream in (self._stdin, self._stdout):
            with contextlib.suppress(OSError):
                stream.close()
        if self.process.returncode is None:  # only after an unexpected error in the loop
            _kill_group(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def run(self, payload: bytes, deadline: float, cancel: threading.Event | None) -> str:
        """Feed stdin and read output until the process exits: ``exited``,
        ``timeout`` or ``cancelled``."""
        self._pending = memoryview(payload)
        if self._pending:
            os.set_blocking(self._in_fd, False)
            self._selector.register(self._in_fd, selectors.EVENT_WRITE)
        else:
            self._stdin.close()
        # With a pidfd the exit is an event; without one (or to notice a cancellation)
        # the loop wakes up every POLL_INTERVAL.
        poll = self._pidfd is None or cancel is not None
        while not self._has_exited():
            if cancel is not None and cancel.is_set():
                return "cancelled"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            self._pump(min(remaining, POLL_INTERVAL) if poll else remaining)
        return "exited"

    def terminate(self, grace: float) -> None:
        """SIGTERM the group, wait up to ``grace`` for the leader, then SIGKILL the group."""
        _kill_group(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not self._has_exited():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._pump(min(remaining, POLL_INTERVAL))
        _kill_group(self.process.pid, signal.SIGKILL)

    def drain(self, deadline: float) -> None:
        """Read what is left in the pipe (everything that could write to it is gone)."""
        while self._output_open:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._pump(remaining)

    def _has_exited(self) -> bool:
        if not self._exited and self._pidfd is None:
            self._exited = _has_exited(self.process)
        return self._exited

    def _pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` for events and handle them."""
        for key, _ in self._selector.select(timeout):
            if key.fd == self._out_fd:
                self._read()
            elif key.fd == self._pidfd:
                self._selector.unregister(key.fd)
                self._exited = True
            else:
                self._write()

    def _read(self) -> None:
        try:
            data = os.read(self._out_fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.tail.add(data)
        else:
            self._output_open = False
            self._selector.unregister(self._out_fd)

    def _write(self) -> None:
        try:
            written = os.write(self._in_fd, self._pending[:_CHUNK])
        except BlockingIOError:
            return
        except OSError:  # the hook closed its stdin or exited: it does not want the rest
            written = len(self._pending)
        self._pending = self._pending[written:]
        if not self._pending:
            self._selector.unregister(self._in_fd)
            self._stdin.close()


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux >= 5.3), or None."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None


def _has_exited(process: subprocess.Popen[bytes]) -> bool:
    """True once the process has exited. Where ``waitid`` exists it is *not* reaped:
    until it is, its process group id cannot be reused, so killing the group stays
    safe. Elsewhere it is reaped (``poll``)."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:  # pragma: no cover - platforms without waitid
        return process.poll() is not None
    try:
        return waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
