"""Checkpoints under real crashes and real broken disks, in real worker processes.

* ``kill -9`` a worker at random points of its job, many times, restart it each
  time: every item is processed at least once (plain appends) or exactly once
  (the output's length saved with the state), never skipped, and the job never
  goes backwards — checked from the append-only log the worker writes.
* a full file system and a read-only one (a tiny tmpfs in a private mount
  namespace; ``RLIMIT_FSIZE`` where namespaces are not available, and always
  as a third case): one clear recorded failure, and the job goes on.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("checkpoint_worker.py")
ITEMS = 1500
KILLS = 10


def _worker(*args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "FAULTLENS_DISABLED": "true"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _started(worker: subprocess.Popen[str]) -> int:
    assert worker.stdout is not None
    line = worker.stdout.readline()
    if not line.startswith("started"):
        worker.wait(timeout=30)
        raise AssertionError(f"worker did not start: {line!r} {worker.stderr.read()!r}")  # type: ignore[union-attr]
    return int(line.split()[1])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
def test_kill_9_at_random_points_never_skips_an_item(mode: str, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    directory = tmp_path / "checkpoints"
    log = tmp_path / "output.log"
    starts: list[int] = []
    kills = 0
    while kills < KILLS:
        # Mix of saves on every item (kills land inside writes) and rate-limited ones
        # (the items since the last write are done again).
        interval = rng.choice([0, 0, 0.005, 0.05])
        worker = _worker("job", directory, log, ITEMS, mode, interval)
        starts.append(_started(worker))
        time.sleep(rng.uniform(0.0, 0.15))
        if worker.poll() is not None:
            break  # finished before the kill: the job is done
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        kills += 1
        leftovers = [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]
        assert len(leftovers) <= 1, (seed, leftovers)  # cleaned up by the next run
    worker = _worker("job", directory, log, ITEMS, mode, 0.05)
    starts.append(_started(worker))
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, (seed, err)
    assert out.strip() == "finished"

    assert kills >= 6, f"seed {seed}: the job finished too fast to be killed"
    assert starts == sorted(starts), (seed, starts)  # the job never went backwards
    assert starts[0] == 0
    assert max(starts) > 0, (seed, starts)  # some restart resumed from a checkpoint
    items = [int(line) for line in log.read_text().splitlines()]
    assert set(items) == set(range(ITEMS)), f"seed {seed}: skipped {set(range(ITEMS)) - set(items)}"
    if mode == "exactly-once":
        assert items == list(range(ITEMS)), f"seed {seed}"
    else:
        # Each run appends from where it resumed, which is never past where the
        # previous one got: an item is followed by the next one or by an earlier one.
        assert items[0] == 0
        jumps = [(a, b) for a, b in itertools.pairwise(items) if b > a + 1]
        assert not jumps, f"seed {seed}: items skipped at {jumps}"
    assert sorted(p.name for p in directory.iterdir()) == [], "cleared at the end"


@functools.cache
def _namespaces() -> bool:
    """True if this machine lets us mount a tmpfs in a private namespace."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _run_disk_worker(kind: str, tmp_path: Path) -> dict[str, Any]:
    directory = tmp_path / "mnt"
    directory.mkdir()
    command = [sys.executable, str(WORKER), "disk", str(directory)]
    if kind in ("full", "read-only") and _namespaces():
        options = "size=64k" + (",ro" if kind == "read-only" else "")
        command = [
            "unshare",
            "-Urm",
            "sh",
            "-c",
            f'mount -t tmpfs -o {options} tmpfs "$0" && exec "$@"',
            str(directory),
            *command,
            kind,
        ]
    elif kind in ("full", "fsize"):
        command.append("fsize")
    elif os.geteuid() != 0:  # read-only by permissions (root ignores them)
        directory.chmod(0o555)
        command.append("read-only")
    else:
        pytest.skip("no way to make a read-only directory here (root, no namespaces)")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    directory.chmod(0o755)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    report["stderr"] = result.stderr
    return report


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["full", "read-only", "fsize"])
def test_a_full_or_read_only_disk_is_one_recorded_failure_and_the_job_goes_on(
    kind: str, tmp_path: Path
) -> None:
    report = _run_disk_worker(kind, tmp_path)
    assert report["processed"] == list(range(50))  # every item ran
    failures = report["failures"]
    assert len(failures) == 1, failures  # 50 failed saves, one recorded failure
    failure = failures[0]
    assert failure["failure.source"] == "checkpoint"
    assert failure["failure.handled"] is True
    assert failure["checkpoint.name"] == "disk-test"
    assert failure["checkpoint.path"].endswith("disk-test.json")
    assert "checkpoint 'disk-test' not saved" in failure["exception.message"]
    if kind == "fsize" or (kind == "full" and not _namespaces()):
        assert failure["exception.message"].startswith("[Errno 27]")  # EFBIG
    else:
        expected = {"full": "resource", "read-only": "permission"}[kind]
        assert failure["failure.category"] == expected
    (during,) = report["during"]["components"]
    assert report["during"]["status"] == "degraded"
    assert during["failed_saves"] == 50
    assert during["last_error"]
    assert report["stderr"].count("not saved") == 1  # logged once, not 50 times
    if kind != "read-only":  # space freed / limit lifted: the next save works again
        assert report["recovered"] is True
        assert report["after"]["status"] == "healthy"
        assert "works again" in report["stderr"]
