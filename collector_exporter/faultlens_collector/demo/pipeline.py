"""The whole loop on one machine: sample app → ``faultlens`` exporter → embedded processor → action.

:func:`run_pipeline_demo` starts a real processor on a free loopback port with
a temporary SQLite store and the rules of :data:`DEMO_CONFIG`, plus an OTLP log
receiver standing in for the user's collector (``--alerts``). Then:

1. the sample program runs with the OpenTelemetry SDK exporting through
   :class:`~faultlens_collector.exporter.FaultlensSpanExporter` (only spans with
   failures travel); the processor groups the failures;
2. the pricing timeouts match a rule whose fix hook "restarts" the pricing
   service; more orders follow, no timeout recurs, and the fix is *verified*;
3. the card processor refuses every charge; after three in a row the processor
   halts ``charge-card``, and the worker's fleet-wide halt guard
   (:class:`~faultlens.resilience.RemoteHalts`) refuses further calls;
4. alerts (new failures, the halt) arrive at the log receiver.

Groups are read back through the ``faultlens.v1`` control API, as ``faultlens
failures list`` reads them from a deployed processor.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import faultlens
from faultlens.resilience import RemoteHalts
from faultlens.semconv import FAILURE_FINGERPRINT
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.actions.alerting import CASCADE_GROUPS
from faultlens_collector.actions.config import load_config
from faultlens_collector.actions.records import AuditRecord, HaltRecord
from faultlens_collector.actions.verification import Effectiveness
from faultlens_collector.causes.listener import RootCauseSettings
from faultlens_collector.causes.window import WindowSettings
from faultlens_collector.control.client import ControlClient
from faultlens_collector.demo import sample_app
from faultlens_collector.demo.alert_receiver import AlertReceiver, ReceivedAlert
from faultlens_collector.exporter import FaultlensSpanExporter
from faultlens_collector.processor.server import Processor, ProcessorSettings

SERVICE: Final = "demo-orders"
FIX_HOOK: Final = "restart-pricing"
HALT_RULE: Final = "card-processor-down"

#: The rules the demo's processor runs (``faultlens serve --config``); ``{python}`` and
#: ``{marker}`` are filled in. docs/actions.md documents every key.
DEMO_CONFIG: Final = """\
[engine]
tick_interval = "200ms"

[hooks.restart-pricing]
command = ["{python}", "-m", "faultlens_collector.demo.restart_pricing", "{marker}"]
timeout = "10s"
cooldown = "10m"
verification_window = "1500ms"

[[rules]]
name = "pricing-timeouts"
category = "timeout"
span_name = "process-order"
fix = ["restart-pricing"]

[[halts]]
name = "card-processor-down"
key = ["service.name", "span.name"]
span_name = "charge-card"
consecutive = 3
"""


@dataclass
class PipelineDemoResult:
    """What one demo run produced."""

    outcome: sample_app.Outcome
    groups: Sequence[Any]
    address: str
    fix_runs: Sequence[AuditRecord] = ()
    fix_record: Effectiveness | None = None
    payments: sample_app.Payments = field(default_factory=sample_app.Payments)
    halts: Sequence[HaltRecord] = ()
    alerts: Sequence[ReceivedAlert] = ()


def run_pipeline_demo(
    timeout: float = 15.0,
    after: Callable[[PipelineDemoResult, Processor], None] | None = None,
) -> PipelineDemoResult:
    """Run the whole loop (see the module docstring); each wait gives up after ``timeout`` s.

    ``after`` is called with the result while the processor still runs (the demo's
    ``--console`` serves the console from there until Ctrl-C)."""
    with tempfile.TemporaryDirectory(prefix="faultlens-demo-") as scratch:
        directory = Path(scratch)
        marker = directory / "pricing-restarted"
        config_path = directory / "actions.toml"
        config_path.write_text(
            DEMO_CONFIG.format(python=_toml_text(sys.executable), marker=_toml_text(str(marker)))
        )
        receiver = AlertReceiver().start()
        processor = Processor(
            ProcessorSettings(
                store_path=directory / "faultlens.db",
                listen="127.0.0.1:0",
                actions=load_config(config_path),
                alerts=receiver.address,
                # One process, one export at the end: its traces are complete at once.
                root_causes=RootCauseSettings(WindowSettings(settle_seconds=0.5)),
            )
        )
        processor.start()
        try:
            result = _run(processor, receiver, marker, timeout)
            if after is not None:
                after(result, processor)
            return result
        finally:
            processor.stop(grace=1)
            receiver.stop()


def _run(
    processor: Processor, receiver: AlertReceiver, marker: Path, timeout: float
) -> PipelineDemoResult:
    engine = processor.engine
    assert engine is not None
    # Act 1: the worker as it was, failing silently and loudly. Its spans go out when it
    # is done, so the fix hook below cannot run while act 1 still times out.
    with _instrumented(_provider(processor.address, delay_millis=60_000)):
        outcome = sample_app.run()
    # Act 2: the pricing rule's fix hook "restarts" pricing; later orders price normally.
    _wait(marker.exists, timeout)
    guard = RemoteHalts(processor.address, context={"service.name": SERVICE})
    with _instrumented(_provider(processor.address, delay_millis=100)) as provider:
        sample_app.more_orders(outcome, pricing_restarted=marker)
        provider.force_flush()
        # Act 3: the card processor is down; three failures in a row halt charge-card.
        guard.wait_synced(timeout)
        payments = sample_app.take_payments(lambda: guard.guard({"span.name": "charge-card"}))
    guard.close()
    _wait(lambda: engine.effectiveness()[FIX_HOOK].pending == 0, timeout)
    _wait(lambda: "halt" in receiver.kinds(), timeout)
    with ControlClient(processor.address) as client:
        groups = list(
            client.export_groups(
                control_pb2.ExportGroupsRequest(sort=control_pb2.SORT_KEY_SEVERITY)
            )
        )
    # New groups alert once their traces settled (root-cause linking holds them).
    _wait(lambda: _announced(receiver) >= {group.fingerprint for group in groups}, timeout)
    return PipelineDemoResult(
        outcome=outcome,
        groups=groups,
        address=processor.address,
        fix_runs=engine.audit(hook=FIX_HOOK),
        fix_record=engine.effectiveness()[FIX_HOOK],
        payments=payments,
        halts=engine.halts_in_force(),
        alerts=list(receiver.alerts),
    )


def _announced(receiver: AlertReceiver) -> set[str]:
    """The groups a ``new_failure`` or ``cascade`` alert told about so far."""
    told: set[str] = set()
    for alert in list(receiver.alerts):
        fingerprint = alert.attributes.get(FAILURE_FINGERPRINT)
        if alert.kind in ("new_failure", "cascade") and isinstance(fingerprint, str):
            told.add(fingerprint)
        symptoms = alert.attributes.get(CASCADE_GROUPS)
        if alert.kind == "cascade" and isinstance(symptoms, (list, tuple)):
            told.update(str(symptom) for symptom in symptoms)
    return told


def _provider(endpoint: str, *, delay_millis: int) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(
        BatchSpanProcessor(
            FaultlensSpanExporter(endpoint=endpoint, insecure=True),
            schedule_delay_millis=delay_millis,
        )
    )
    return provider


class _instrumented:
    """faultlens and its hooks wired to ``provider`` for the sample app; on exit, every
    span is exported and everything undone."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider

    def __enter__(self) -> TracerProvider:
        faultlens.configure(tracer_provider=self.provider)
        sample_app.tracer = self.provider.get_tracer("faultlens.demo")
        self._thread_hook = threading.excepthook
        threading.excepthook = lambda args: None  # the demo shows failures as a table instead
        root = logging.getLogger()
        self._level = root.level
        root.setLevel(logging.INFO)
        # the sample app's log records (and asyncio's report of its forgotten task) are
        # shown as failures in the table, not printed
        self._quiet = logging.NullHandler()
        root.addHandler(self._quiet)
        faultlens.install()
        return self.provider

    def __exit__(self, *exc_info: object) -> None:
        faultlens.uninstall()
        threading.excepthook = self._thread_hook
        logging.getLogger().removeHandler(self._quiet)
        logging.getLogger().setLevel(self._level)
        faultlens.flush()
        self.provider.force_flush()
        self.provider.shutdown()
        faultlens.configure(tracer_provider=trace.get_tracer_provider())


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _toml_text(text: str) -> str:
    """``text`` escaped for a TOML basic string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
