"""``faultlens scan`` over a real installed package with hundreds of modules.

    python benchmarks/bench_scan.py [PACKAGE] [--rounds N]

Prints the wall time of each round and modules per second for ``faultlens scan
PACKAGE`` (default ``pip``: ~490 modules, vendored dependencies included), with
the default workers (one per CPU) and with ``--isolated`` (no module kept between
jobs) for comparison. The goal on the 2-core shared machine: at most 30 s for 500
modules.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

FAULTLENS = Path(sys.executable).with_name("faultlens")


def one(package: str, *extra: str) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(
        [str(FAULTLENS), "scan", package, *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    modules = int(result.stderr.split("(")[1].split()[0])
    return elapsed, modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default="pip")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--isolated", action="store_true", help="also time --isolated once")
    args = parser.parse_args()
    times = []
    for index in range(args.rounds):
        elapsed, modules = one(args.package)
        times.append(elapsed)
        print(
            f"round {index + 1}: {modules} modules in {elapsed:.1f} s "
            f"({modules / elapsed:.0f} modules/s)"
        )
    print(
        f"best {min(times):.1f} s, worst {max(times):.1f} s for {modules} modules "
        f"(goal: 30 s for 500)"
    )
    if args.isolated:
        elapsed, modules = one(args.package, "--isolated")
        print(f"--isolated: {modules} modules in {elapsed:.1f} s")
    if min(times) > 30.0 * modules / 500:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
