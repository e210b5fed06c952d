"""``faultlens run -- pytest`` against plain ``pytest``, measured in the same run.

    python benchmarks/bench_run.py [--project DIR] [--rounds N] [-- PYTEST ARGS]

Rounds alternate between ``python -m pytest ARGS`` and ``faultlens run -- python -m
pytest ARGS`` in ``--project`` (default: this checkout, over its fast unit tests,
where nothing is instrumented: faultlens never instruments itself — it shows what
capture costs a process), and print each side's best wall time and the ratio.
For a representative pure-Python project, unpack a library's sdist with its tests,
e.g. more-itertools 10.5.0 (``pip download --no-binary :all: --no-deps
more-itertools==10.5.0``), and pass its folder: ``faultlens run`` then instruments
``more_itertools`` (on 3.12+: watched by ``sys.monitoring`` for swallowed
exceptions; on 3.10/3.11: every function wrapped). Goal: at most 1.2x.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST_TESTS = [
    "tests/test_sdk_classify.py",
    "tests/test_sdk_fingerprint.py",
    "tests/test_sdk_text.py",
    "tests/test_grouping_fingerprint.py",
    "tests/test_grouping_stacktrace.py",
    "tests/test_actions_matching.py",
    "tests/test_actions_config.py",
]


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"{command[:4]} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    pytest_args = [a for a in args.pytest_args if a != "--"]
    if not pytest_args:
        pytest_args = FAST_TESTS if args.project == ROOT else ["tests"]
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args]
    faultlens = [str(Path(sys.executable).with_name("faultlens")), "run", "--", *pytest]
    best = {"pytest": float("inf"), "faultlens run": float("inf")}
    for index in range(args.rounds):
        for name, command in (("pytest", pytest), ("faultlens run", faultlens)):
            elapsed = timed(command, args.project)
            best[name] = min(best[name], elapsed)
            print(f"round {index + 1}: {name:<14} {elapsed:6.2f} s", flush=True)
    ratio = best["faultlens run"] / best["pytest"]
    print(
        f"best: pytest {best['pytest']:.2f} s, faultlens run {best['faultlens run']:.2f} s, "
        f"ratio {ratio:.2f}x (goal <= 1.2x) [{sys.version.split()[0]}, {args.project.name}]"
    )
    if ratio > 1.2:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
