"""Run a worker on several threads at once, for the concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_concurrently(worker: Callable[[int], object], threads: int = 4) -> None:
    """Call ``worker(n)`` for n in range(threads), all released together; wait for all."""
    start = threading.Barrier(threads)

    def body(n: int) -> None:
        start.wait()
        worker(n)

    running = [threading.Thread(target=body, args=(n,)) for n in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
