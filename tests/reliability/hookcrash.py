"""kill -9 of ``faultlens serve --config`` while fix hooks run.

Two rules run the ``slow`` hook of ``hook_behaviours.py`` (it logs ``start`` and
``end`` with its job id and fingerprint, 2 s apart): one, ``once``, with the default
``at_most_once`` delivery for failures of service ``once``; the other, ``durable``,
``at_least_once``, for service ``durable``; both with a one-hour cooldown.
:func:`kill_during_hooks` runs ``cycles`` rounds on one store: start the processor,
send new failures for both services, kill it as soon as their hooks started. At the
end it restarts once more, sends every group again (inside the cooldown) and waits
for all hook processes to end (a killed processor's hooks run on: they lead their
own sessions).

Promises checked: an ``at_most_once`` hook ran exactly once per group — never
again after a restart, not even for a new occurrence inside its cooldown; every
interrupted ``at_least_once`` job ran again after the restart, with its job id.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.processor_support import TRACE_EXPORT, ServeProcess, raw_call, span, trace_request
from tests.reliability.harness import wait_until

BEHAVIOURS = Path(__file__).with_name("hook_behaviours.py")


def hook_table(name: str, mode: str, log: Path, **options: str) -> str:
    """A ``[hooks.<name>]`` table running ``hook_behaviours.py <mode>``."""
    lines = [
        f"[hooks.{name}]",
        f"command = [{json.dumps(sys.executable)}, {json.dumps(str(BEHAVIOURS))}, "
        f"{json.dumps(mode)}]",
        f'env = {{ HOOK_LOG = {json.dumps(str(log))}, HOOK_SECONDS = "2" }}',
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def send(address: str, fingerprints: list[str], service: str = "svc", index: int = 1) -> None:
    """One request with one failure per fingerprint; it must be acknowledged."""
    request = trace_request(
        [
            span(
                f"work-{position}",
                index=index * 1000 + position,
                events=[
                    {
                        "exception.type": "HookError",
                        "exception.message": f"failure {fp}",
                        "failure.fingerprint": fp,
                    }
                ],
            )
            for position, fp in enumerate(fingerprints)
        ],
        service=service,
    )
    _, error = raw_call(address, TRACE_EXPORT, request.SerializeToString())
    assert error is None, error


def log_lines(log: Path) -> list[list[str]]:
    """The hook log, one list of fields per line."""
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def _started(log: Path, fingerprints: set[str], timeout: float) -> bool:
    """Wait until a hook started for each of ``fingerprints``."""
    return wait_until(
        lambda: fingerprints <= {fields[2] for fields in log_lines(log) if fields[0] == "start"},
        timeout,
    )


@dataclass
class HookCrashReport:
    """Runs per group and job, and the promises broken."""

    cycles: int = 0
    once_runs: Counter[str] = field(default_factory=Counter)
    durable_runs: Counter[str] = field(default_factory=Counter)
    durable_jobs_run_again: int = 0
    durable_jobs: int = 0
    problems: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "kill -9 while hooks ran": self.cycles,
            "at_most_once groups / runs": f"{len(self.once_runs)} / {sum(self.once_runs.values())}",
            "at_least_once jobs / run again after the restart": (
                f"{self.durable_jobs} / {self.durable_jobs_run_again}"
            ),
        }


def kill_during_hooks(directory: Path, *, cycles: int, groups: int = 2) -> HookCrashReport:
    """Run the cycles (see the module docstring); problems are listed, not raised."""
    log = directory / "hooks.log"
    config = directory / "faultlens.toml"
    config.write_text(
        f"[engine]\nworkers = {2 * groups}\n\n"
        + hook_table("once", "slow", log, cooldown="1h", timeout="20s")
        + hook_table("durable", "slow", log, cooldown="1h", timeout="20s", delivery="at_least_once")
        + '[[rules]]\nname = "once"\nservice = "once"\nfix = ["once"]\n'
        + '[[rules]]\nname = "durable"\nservice = "durable"\nfix = ["durable"]\n'
    )
    store = directory / "store.db"
    report = HookCrashReport()
    sent: dict[str, list[str]] = {"once": [], "durable": []}
    for cycle in range(cycles):
        fresh = {
            service: [f"{cycle + 1:08x}{tag}{index:07x}" for index in range(groups)]
            for service, tag in (("once", "a"), ("durable", "b"))
        }
        with ServeProcess(store, "--config", str(config)) as serve:
            for service, fingerprints in fresh.items():
                send(serve.address, fingerprints, service=service, index=cycle + 1)
                sent[service] += fingerprints
            if not _started(log, set(fresh["once"] + fresh["durable"]), 20):
                report.problems.append(f"cycle {cycle}: hooks did not start")
            serve.kill()
        report.cycles += 1
    interrupted = {
        fields[1] for fields in log_lines(log) if fields[0] == "start" and fields[2][8] == "b"
    }
    with ServeProcess(store, "--config", str(config)) as serve:
        for service, fingerprints in sent.items():
            send(serve.address, fingerprints, service=service, index=cycles + 1)

        def rerun() -> bool:
            starts = Counter(fields[1] for fields in log_lines(log) if fields[0] == "start")
            return all(starts[job] >= 2 for job in interrupted)

        if not wait_until(rerun, 30):
            report.problems.append("interrupted at_least_once jobs did not run again")
        time.sleep(0.5)  # anything the re-sent groups would wrongly start, starts by now

    def settled() -> bool:
        kinds = Counter(fields[0] for fields in log_lines(log))
        return kinds["end"] == kinds["start"]

    if not wait_until(settled, 30):
        report.problems.append("hook processes did not end")
    starts = Counter(fields[1] for fields in log_lines(log) if fields[0] == "start")
    for fields in log_lines(log):
        if fields[0] == "start":
            runs = report.once_runs if fields[2][8] == "a" else report.durable_runs
            runs[fields[2]] += 1
    for fingerprint in sent["once"]:
        if report.once_runs[fingerprint] != 1:
            report.problems.append(
                f"at_most_once group {fingerprint} ran {report.once_runs[fingerprint]} times"
            )
    report.durable_jobs = len(interrupted)
    report.durable_jobs_run_again = sum(starts[job] >= 2 for job in interrupted)
    if set(report.durable_runs) != set(sent["durable"]):
        report.problems.append("an at_least_once group never ran")
    return report
