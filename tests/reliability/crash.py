"""kill -9 cycles: ``faultlens serve`` killed under load, restarted, counted.

:func:`kill_cycles` runs ``cycles`` rounds on one store file. Each round starts
``faultlens serve``, checks the store against what clients were told so far
(``acknowledged <= stored <= acknowledged + uncertain``, see :mod:`.load`),
lets ``clients`` send until a seeded random moment, kills the process with
SIGKILL and checks the file with ``PRAGMA integrity_check`` while nothing has it
open. Some rounds kill the process while it starts (opening and migrating the
store). Used by ``test_reliability_crash.py`` and the soak mode.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.processor_support import ServeProcess
from tests.reliability import load
from tests.reliability.harness import stored_occurrences


@dataclass
class CrashReport:
    """What the kill cycles saw."""

    cycles: int = 0
    kills_during_start: int = 0
    acknowledged: int = 0
    max_uncertain: int = 0
    committed_unacknowledged: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "kill -9 cycles": self.cycles,
            "of them during start-up": self.kills_during_start,
            "acknowledged occurrences": self.acknowledged,
            "lost acknowledged occurrences": 0 if not self.problems else "see problems",
            "committed but unacknowledged (at-least-once)": self.committed_unacknowledged,
            "restart to listening p50 (ms)": load.percentile(self.restart_seconds, 50, 1000),
            "restart to listening max (ms)": load.percentile(self.restart_seconds, 100, 1000),
            "problems": self.problems,
        }


def integrity(store: Path) -> str:
    """``PRAGMA integrity_check`` of a closed store file (``ok`` when sound)."""
    connection = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def kill_cycles(
    store: Path,
    *,
    cycles: int,
    seed: int,
    clients: int = 4,
    serve_args: tuple[str, ...] = (),
    run_seconds: tuple[float, float] = (0.2, 0.8),
    kill_during_start_every: int = 4,
) -> CrashReport:
    """Run the cycles (see the module docstring); problems are listed, not raised."""
    rng = random.Random(seed)
    result = CrashReport()
    acknowledged = 0
    uncertain = 0
    for cycle in range(cycles):
        if (
            kill_during_start_every
            and cycle % kill_during_start_every == kill_during_start_every - 1
        ):
            _kill_while_starting(store, serve_args, rng.uniform(0.0, 0.15))
            result.kills_during_start += 1
        started = time.monotonic()
        serve = ServeProcess(store, *serve_args).start()
        try:
            result.restart_seconds.append(time.monotonic() - started)
            stored = stored_occurrences(serve.address)
            if not acknowledged <= stored <= acknowledged + uncertain:
                result.problems.append(
                    f"cycle {cycle}: stored {stored}, acknowledged {acknowledged}, "
                    f"uncertain {uncertain}"
                )
            result.committed_unacknowledged += stored - acknowledged
            acknowledged = stored
            stop = threading.Event()
            senders = [
                load.Client(
                    serve.address,
                    load.bodies(seed * 100_000 + cycle * 100 + index, count=4),
                    stop,
                    timeout=10,
                    give_up_when_unreachable=True,
                )
                for index in range(clients)
            ]
            for sender in senders:
                sender.start()
            time.sleep(rng.uniform(*run_seconds))
            serve.kill()
        finally:
            if serve.process is not None and serve.process.poll() is None:
                serve.kill()
        stop.set()
        round_acknowledged = round_uncertain = 0
        for sender in senders:
            sender.join(15)
            if sender.is_alive():
                result.problems.append(f"cycle {cycle}: a client hung after the kill")
            round_acknowledged += sender.report.acknowledged
            round_uncertain += sender.report.uncertain
        acknowledged += round_acknowledged
        uncertain = round_uncertain
        result.acknowledged += round_acknowledged
        result.max_uncertain = max(result.max_uncertain, uncertain)
        check = integrity(store)
        if check != "ok":
            result.problems.append(f"cycle {cycle}: integrity_check says {check}")
        result.cycles += 1
    serve = ServeProcess(store, *serve_args).start()
    try:
        stored = stored_occurrences(serve.address)
    finally:
        serve.stop()
    if not acknowledged <= stored <= acknowledged + uncertain:
        result.problems.append(
            f"end: stored {stored}, acknowledged {acknowledged}, uncertain {uncertain}"
        )
    result.committed_unacknowledged += stored - acknowledged
    return result


def _kill_while_starting(store: Path, serve_args: tuple[str, ...], after: float) -> None:
    """Start ``faultlens serve`` and SIGKILL it ``after`` seconds later, ready or not."""
    import signal
    import subprocess

    from tests.processor_support import FAULTLENS

    process = subprocess.Popen(
        [str(FAULTLENS), "serve", "--listen", "127.0.0.1:0", "--store", str(store), *serve_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(after)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
