"""A 1,000,000-item loop that resumes where it stopped: ``faultlens.resilience.Checkpoint``.

Run it, kill it (Ctrl-C, ``kill -9``, ``--crash-at``), run it again::

    python examples/checkpoint_resume.py /tmp/checkpoints --crash-at 600000   # dies: SIGKILL
    python examples/checkpoint_resume.py /tmp/checkpoints                     # resumes, finishes

The second run starts from the last checkpoint written before the crash (at
most one interval — ``FAULTLENS_CHECKPOINT_INTERVAL``, 10 s by default — of
items is done again), finishes, and clears the checkpoint.
"""

from __future__ import annotations

import argparse
import os
import signal

from faultlens.resilience import Checkpoint

ITEMS = 1_000_000


def reindex(item: int) -> int:
    """Stands in for the real work of one item."""
    return item * item % 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="where the checkpoint lives")
    parser.add_argument("--crash-at", type=int, help="kill this process with SIGKILL at this item")
    options = parser.parse_args()

    job = Checkpoint("reindex", directory=options.directory)
    with job:  # an exception leaving the block saves the latest state; a normal exit clears it
        state = job.restore() or {"position": 0}
        print(f"starting at item {state['position']:,}", flush=True)
        for i in range(state["position"], ITEMS):
            if i == options.crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
            reindex(i)
            state["position"] = i + 1  # the work *done*, recorded after it is done
            job.save(state)  # written if the interval passed since the last write
    print(f"finished {ITEMS:,} items; checkpoint cleared", flush=True)


if __name__ == "__main__":
    main()
