"""Fix hooks that behave well or badly, for the reliability tests: ``hook_behaviours.py MODE``.

``slow``  appends ``start <job>`` to ``$HOOK_LOG``, sleeps ``$HOOK_SECONDS`` (1), appends
          ``end <job>`` (each line written with O_APPEND and fsync'd);
``hang``  sleeps for an hour;
``flood`` writes ``$HOOK_MIB`` (64) MiB to stdout as fast as it can, then exits 0;
``fork``  starts a child (in the hook's process group) that sleeps for an hour, appends
          ``child <pid>`` to ``$HOOK_LOG`` and exits 0 at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def _append(line: str) -> None:
    descriptor = os.open(os.environ["HOOK_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, f"{line}\n".encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def main() -> int:
    mode = sys.argv[1]
    job = os.environ.get("FAULTLENS_JOB_ID", "?")
    if mode == "slow":
        _append(f"start {job} {os.environ.get('FAULTLENS_FAILURE_FINGERPRINT', '')}")
        time.sleep(float(os.environ.get("HOOK_SECONDS", "1")))
        _append(f"end {job}")
    elif mode == "hang":
        time.sleep(3600)
    elif mode == "flood":
        chunk = b"x" * (1 << 20)
        for _ in range(int(os.environ.get("HOOK_MIB", "64"))):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    elif mode == "fork":
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(3600)"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _append(f"child {child.pid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
