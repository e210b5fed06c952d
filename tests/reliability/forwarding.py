"""Ingest under load with the ``--forward`` hop healthy, down, slow, or not configured.

:func:`forward_runs` runs the modes one after the other on fresh stores, each
for ``seconds`` of load, and reads what the processor itself reported
(``OTEL_METRICS_EXPORTER=otlp`` to a receiver): requests forwarded and dropped
by reason. Stopping a processor with queued forwards takes its drain time
(5 s), so each run is told to stop as soon as its load ends and the next one
starts meanwhile; a draining processor only sleeps between retries.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from tests.otlp_receiver import OtlpReceiver
from tests.processor_support import ServeProcess
from tests.reliability import load
from tests.reliability.harness import server_output
from tests.reliability.hops import SlowReceiver, closed_port, metric_env, metric_totals, total

MODES = ("none", "healthy", "down", "slow")
#: Seconds the slow hop takes per request, and the forward queue it is given (MiB).
SLOW_SECONDS = 0.5
SLOW_QUEUE_MIB = 0.25


class ForwardRun:
    """One processor with one kind of forward hop (see the module docstring)."""

    def __init__(self, directory: Path, mode: str, seed: int) -> None:
        self.mode = mode
        self.seed = seed
        self.hop: OtlpReceiver | None = None
        args: tuple[str, ...] = ()
        if mode == "healthy":
            self.hop = OtlpReceiver().__enter__()
        elif mode == "slow":
            self.hop = SlowReceiver(SLOW_SECONDS).__enter__()
            args = ("--forward-queue-mib", str(SLOW_QUEUE_MIB))
        if self.hop is not None:
            args = ("--forward", self.hop.endpoint, *args)
        elif mode == "down":
            args = ("--forward", f"127.0.0.1:{closed_port()}")
        self.metrics = OtlpReceiver().__enter__()
        self.serve = ServeProcess(directory / f"{mode}.db", *args, env=metric_env(self.metrics))
        self.result = load.LoadReport()

    def load(self, seconds: float, clients: int = 4) -> None:
        """Start the processor, drive the load, and ask it to stop (without waiting)."""
        self.serve.start()
        try:
            self.result = load.drive(
                self.serve.address, clients=clients, seconds=seconds, seed=self.seed
            )
        finally:
            assert self.serve.process is not None
            self.serve.process.send_signal(signal.SIGTERM)

    def finish(self) -> dict[str, Any]:
        """Wait for the processor to stop; its figures and counts."""
        try:
            assert self.serve.process is not None
            exit_code = self.serve.process.wait(60)
            totals = metric_totals(self.metrics)
        finally:
            self.metrics.__exit__(None, None, None)
            if self.hop is not None:
                self.hop.__exit__(None, None, None)
        return {
            "result": self.result,
            "exit code": exit_code,
            "sent": sum(total(totals, "faultlens.processor.forward.sent").values()),
            "dropped": total(totals, "faultlens.processor.forward.dropped"),
            "received by the hop": len(self.hop.requests["traces"]) if self.hop else 0,
            "output": server_output(self.serve),
        }


def forward_runs(
    directory: Path, seconds: float, *, seed: int = 21, modes: tuple[str, ...] = MODES
) -> dict[str, dict[str, Any]]:
    """Every mode's figures (see :meth:`ForwardRun.finish`)."""
    runs = []
    for mode in modes:
        run = ForwardRun(directory, mode, seed)
        run.load(seconds)
        runs.append(run)
    return {run.mode: run.finish() for run in runs}


def figures(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Rate, latency and forwarding counts per mode, rates relative to no forwarding."""
    baseline = runs["none"]["result"]
    base_rate = baseline.acknowledged_requests / baseline.seconds
    table: dict[str, Any] = {}
    for mode, run in runs.items():
        result = run["result"]
        rate = result.acknowledged_requests / result.seconds
        table[mode] = {
            "acknowledged requests/s": round(rate, 1),
            "vs no forwarding": round(rate / base_rate, 2),
            "ack p99 (ms)": load.percentile(result.ok_latencies, 99, 1000),
            "forwarded": run["sent"],
            "dropped": run["dropped"],
        }
    return table
