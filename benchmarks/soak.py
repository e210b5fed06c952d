"""Soak mode of the reliability suite: the same scenarios as ``tests/reliability``, for longer.

Run ``.venv/bin/python benchmarks/soak.py --duration 60`` (seconds, shared among the
scenarios) and it prints each scenario's figures and checks the same promises the tests
check; the exit status is non-zero when one was broken. ``--write-docs`` also rewrites
the figures section of ``docs/reliability.md`` (between its ``soak:begin`` and
``soak:end`` markers) with what this run measured. ``--scenario`` picks some
(``hostile,fuzz,overload,crash,hooks,disk,forward,app``); ``--seed`` changes every seeded choice.

The scenarios:

* ``hostile`` — failure text built to make regular expressions backtrack, through
  redaction, parameterization and stack-trace parsing, at two sizes (linear: 4x the text,
  about 4x the time);
* ``fuzz`` — malformed requests on every OTLP service and the control API of a running
  ``faultlens serve`` until the time is up;
* ``overload`` — 32 clients against ``--workers 2 --max-pending-requests 6``;
* ``crash`` — ``kill -9`` cycles under load, some during start-up;
* ``hooks`` — ``kill -9`` cycles while fix hooks run (``at_most_once`` and ``at_least_once``);
* ``disk`` — a store whose disk fills up under load, then has room again;
* ``forward`` — ingest with the forward hop absent, healthy, down and slow;
* ``app`` — an instrumented program with no exporter, its endpoints up, and down.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faultlens._parameterize import parameterize  # noqa: E402
from faultlens._redact import Redactor  # noqa: E402
from faultlens_collector.ingest.stacktrace import parse_frames  # noqa: E402

from tests.processor_support import (  # noqa: E402
    TRACE_EXPORT,
    ServeProcess,
    raw_call,
    running_processor,
)
from tests.reliability import (  # noqa: E402
    appside,
    crash,
    forwarding,
    fuzz,
    hookcrash,
    hostile,
    load,
)
from tests.reliability.harness import peak_rss_mib, rss_mib, stored_occurrences  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
BEGIN = "<!-- soak:begin -->"
END = "<!-- soak:end -->"


@dataclass
class Outcome:
    """One scenario's figures (label → value) and broken promises."""

    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)


def soak_hostile(seconds: float, seed: int, directory: Path) -> Outcome:
    outcome = Outcome("Hostile text (regular-expression backtracking)")
    functions: dict[str, Callable[[str], object]] = {
        "redaction": Redactor().redact,
        "message parameterization": parameterize,
        "stack-trace parsing": parse_frames,
    }
    for name, function in functions.items():
        worst = {}
        for size in (64 * 1024, 256 * 1024):
            slowest = 0.0
            for _, text in hostile.repeated_texts(size):
                started = time.perf_counter()
                function(text)
                slowest = max(slowest, time.perf_counter() - started)
            worst[size] = slowest
        outcome.figures[f"{name}: worst of {len(list(hostile.repeated_texts(1)))} texts"] = (
            f"{worst[65536] * 1000:.1f} ms at 64 KiB, {worst[262144] * 1000:.1f} ms at 256 KiB"
        )
        outcome.check(worst[262144] < 1.0, f"{name} took {worst[262144]:.2f} s on 256 KiB")
    return outcome


def soak_fuzz(seconds: float, seed: int, directory: Path) -> Outcome:
    outcome = Outcome("Malformed input")
    deadline = time.monotonic() + seconds
    with ServeProcess(directory / "fuzz.db", "--max-request-mib", "4") as serve:
        result = fuzz.fuzz(
            serve.address, fuzz.cases(seed), until=lambda _: time.monotonic() > deadline
        )
        body = fuzz.huge_attributes(100_000)
        started = time.monotonic()
        wide = fuzz.call(_channel(serve.address), TRACE_EXPORT, body, timeout=30)
        wide_seconds = time.monotonic() - started
        after = raw_call(serve.address, TRACE_EXPORT, load.bodies(seed, count=1)[0].data)[1]
        alive = serve.process is not None and serve.process.poll() is None
        output = "".join(serve.output)
    outcome.figures.update(
        {
            "requests sent": result.calls,
            "requests per second": round(result.calls / result.seconds, 1),
            "replies by status": ", ".join(f"{k} {v}" for k, v in result.outcomes.items()),
            "unexpected replies (crash, hang, wrong status)": len(result.unexpected),
            "slowest reply": f"{result.slowest_seconds * 1000:.0f} ms ({result.slowest})",
            "one event with 100,000 attributes": f"{wide[0].name} in {wide_seconds:.2f} s",
        }
    )
    outcome.check(not result.unexpected, f"unexpected replies: {result.unexpected[:5]}")
    outcome.check(alive and after is None, "the processor did not answer normally afterwards")
    outcome.check("Traceback" not in output, "the processor logged a traceback")
    return outcome


def _channel(address: str) -> Any:
    import grpc

    return grpc.insecure_channel(address, options=[("grpc.max_send_message_length", -1)])


def soak_overload(seconds: float, seed: int, directory: Path) -> Outcome:
    outcome = Outcome("Overload")
    clients = 32
    args = ("--workers", "2", "--max-pending-requests", "6")
    with ServeProcess(directory / "overload.db", *args) as serve:
        warm = load.bodies(seed, count=1)[0]
        raw_call(serve.address, TRACE_EXPORT, warm.data)
        before = rss_mib(serve)
        result = load.drive(serve.address, clients=clients, seconds=seconds, seed=seed)
        peak = peak_rss_mib(serve)
        stored = stored_occurrences(serve.address) - warm.occurrences
    outcome.figures.update(
        {
            "set-up": f"{clients} clients, --workers 2, --max-pending-requests 6, {seconds:.0f} s",
            "requests": result.requests,
            "acknowledged requests per second": round(
                result.acknowledged_requests / result.seconds, 1
            ),
            "shed with UNAVAILABLE + RetryInfo": result.shed,
            "other replies": dict(result.other) or "none",
            "acknowledged latency p50 / p99": f"{load.percentile(result.ok_latencies, 50, 1000)}"
            f" / {load.percentile(result.ok_latencies, 99, 1000)} ms",
            "shed latency p99": f"{load.percentile(result.shed_latencies, 99, 1000)} ms",
            "acknowledged / stored occurrences": f"{result.acknowledged} / {stored}",
            "peak RSS (before the load)": f"{peak:.0f} MiB ({before:.0f} MiB)",
        }
    )
    outcome.check(result.shed > 0, "the load did not overload the processor")
    outcome.check(not result.other, f"unexpected replies {dict(result.other)}")
    outcome.check(stored == result.acknowledged, f"stored {stored} != acked {result.acknowledged}")
    outcome.check(peak - before < 100, f"peak RSS grew by {peak - before:.0f} MiB")
    return outcome


def soak_crash(seconds: float, seed: int, directory: Path) -> Outcome:
    outcome = Outcome("kill -9")
    cycles = max(4, int(seconds / 1.2))
    result = crash.kill_cycles(directory / "crash.db", cycles=cycles, seed=seed)
    figures = result.figures()
    figures.pop("problems")
    outcome.figures.update(figures)
    outcome.problems += result.problems
    return outcome


def soak_hooks(seconds: float, seed: int, directory: Path) -> Outcome:
    outcome = Outcome("kill -9 while fix hooks run")
    result = hookcrash.kill_during_hooks(directory, cycles=max(2, int(seconds / 2.5)))
    outcome.figures.update(result.figures())
    outcome.problems += result.problems
    return outcome


def soak_disk(seconds: float, seed: int, directory: Path) -> Outcome:
    outcome = Outcome("Store disk full")
    share = max(0.5, seconds / 3)
    with running_processor(directory) as processor:
        assert processor.store is not None
        before = load.drive(processor.address, clients=2, seconds=share, seed=seed)
        (pages,) = processor.store.connection.execute("PRAGMA page_count").fetchone()
        processor.store.connection.execute(f"PRAGMA max_page_count = {pages}")
        full = load.drive(
            processor.address, clients=2, seconds=share, seed=seed, fingerprints=1 << 40
        )
        processor.store.connection.execute("PRAGMA max_page_count = 1073741823")
        after = load.drive(processor.address, clients=2, seconds=share, seed=seed + 1)
        stored = stored_occurrences(processor.address)
    acknowledged = before.acknowledged + full.acknowledged + after.acknowledged
    outcome.figures.update(
        {
            "requests while full": full.requests,
            "refused with UNAVAILABLE + RetryInfo while full": full.refused,
            "acknowledged while full": full.acknowledged_requests,
            "acknowledged once there was room again": after.acknowledged_requests,
            "acknowledged / stored occurrences": f"{acknowledged} / {stored}",
        }
    )
    outcome.check(full.refused > 0 and full.uncertain == 0, "a full disk was not refused")
    outcome.check(stored == acknowledged, f"stored {stored} != acked {acknowledged}")
    return outcome


def soak_forward(seconds: float, seed: int, directory: Path) -> Outcome:
    outcome = Outcome("Forward hop")
    runs = forwarding.forward_runs(directory, max(1.0, seconds / 4), seed=seed)
    for mode, row in forwarding.figures(runs).items():
        dropped = ", ".join(f"{k.split('=')[-1]} {int(v)}" for k, v in row["dropped"].items())
        outcome.figures[f"{mode}"] = (
            f"{row['acknowledged requests/s']} req/s ({row['vs no forwarding']}x), "
            f"p99 {row['ack p99 (ms)']} ms, forwarded {int(row['forwarded'])}, "
            f"dropped {dropped or '0'}"
        )
    for mode, run in runs.items():
        result = run["result"]
        if mode != "none":
            accounted = run["sent"] + sum(run["dropped"].values())
            outcome.check(
                accounted == result.acknowledged_requests,
                f"{mode}: forwarded + dropped {accounted} != acknowledged "
                f"{result.acknowledged_requests}",
            )
        outcome.check(not result.other, f"{mode}: unexpected replies {dict(result.other)}")
    return outcome


def soak_app(seconds: float, seed: int, directory: Path) -> Outcome:
    outcome = Outcome("The application side")
    spans = max(5_000, int(seconds * 4_000))
    runs = {
        mode: appside.run_app(mode, spans, export_timeout=0.3) for mode in ("none", "up", "down")
    }
    for mode, run in runs.items():
        outcome.figures[f"{mode}: µs per request, peak RSS, shutdown"] = (
            f"{run.micros_per_span:.1f} µs ({run.loop_seconds / runs['none'].loop_seconds:.2f}x "
            f"no exporter, {run.loop_seconds / runs['up'].loop_seconds:.2f}x endpoints up), "
            f"{run.peak_rss_mib:.0f} MiB, {run.shutdown_seconds:.2f} s"
        )
        outcome.check(run.returncode == 0 and run.unexpected == 0, f"{mode}: the program failed")
    outcome.figures["requests per run"] = spans
    outcome.check(
        runs["down"].loop_seconds <= 1.5 * runs["up"].loop_seconds,
        "the program ran slower with its endpoints down",
    )
    return outcome


SCENARIOS: dict[str, tuple[Callable[[float, int, Path], Outcome], float]] = {
    # name: (function, share of the duration)
    "hostile": (soak_hostile, 0.0),
    "fuzz": (soak_fuzz, 0.2),
    "overload": (soak_overload, 0.15),
    "crash": (soak_crash, 0.15),
    "hooks": (soak_hooks, 0.1),
    "disk": (soak_disk, 0.1),
    "forward": (soak_forward, 0.2),
    "app": (soak_app, 0.1),
}


def markdown(outcomes: list[Outcome], duration: float, command: str) -> str:
    """The figures section of docs/reliability.md."""
    today = datetime.date.today().isoformat()
    lines = [
        f"Measured on {today} with `{command}`: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.machine()}; "
        f"{duration:.0f} s of scenarios in all. Every promise held"
        + ("." if not any(o.problems for o in outcomes) else " except those listed.")
        + "",
        "",
    ]
    for outcome in outcomes:
        lines += [f"**{outcome.title}** ({outcome.seconds:.0f} s)", "", "| | |", "|---|---|"]
        lines += [f"| {label} | {value} |" for label, value in outcome.figures.items()]
        lines += [f"| **broken** | {problem} |" for problem in outcome.problems]
        lines.append("")
    return "\n".join(lines)


def write_docs(section: str) -> None:
    text = DOC.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{DOC} has no {BEGIN} … {END} section")
    DOC.write_text(pattern.sub(lambda _: f"{BEGIN}\n{section}\n{END}", text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds in all (default 60)")
    parser.add_argument("--scenario", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--write-docs", action="store_true", help="rewrite docs/reliability.md")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.scenario.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; use {', '.join(SCENARIOS)}")
    shares = sum(SCENARIOS[name][1] for name in chosen) or 1.0
    outcomes = []
    started_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="faultlens-soak-") as tmp:
        for name in chosen:
            function, share = SCENARIOS[name]
            seconds = args.duration * share / shares
            directory = Path(tmp) / name
            directory.mkdir()
            started = time.monotonic()
            print(f"\n== {name} ({seconds:.0f} s)", flush=True)
            outcome = function(seconds, args.seed, directory)
            outcome.seconds = time.monotonic() - started
            for label, value in outcome.figures.items():
                print(f"  {label}: {value}")
            for problem in outcome.problems:
                print(f"  BROKEN: {problem}")
            outcomes.append(outcome)
    total = time.monotonic() - started_all
    broken = sum(len(outcome.problems) for outcome in outcomes)
    print(f"\n{len(outcomes)} scenarios in {total:.0f} s; {broken} broken promises")
    if args.write_docs:
        command = f"python benchmarks/soak.py --duration {args.duration:g} --write-docs"
        write_docs(markdown(outcomes, total, command))
        print(f"wrote the figures into {DOC.relative_to(ROOT)}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
