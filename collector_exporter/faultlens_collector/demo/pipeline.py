"""The whole pipeline on one machine: sample app → ``faultlens`` exporter → embedded processor.

:func:`run_pipeline_demo` starts a real processor on a free loopback port with
a temporary SQLite store, runs the sample program with the OpenTelemetry SDK
exporting through :class:`~faultlens_collector.exporter.FaultlensSpanExporter`
(only spans with failures travel), and reads the resulting failure groups back
through the ``faultlens.v1`` control API — the same path ``faultlens failures
list`` takes against a deployed processor.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faultlens
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.client import ControlClient
from faultlens_collector.demo import sample_app
from faultlens_collector.exporter import FaultlensSpanExporter
from faultlens_collector.processor.server import Processor, ProcessorSettings

SERVICE = "demo-orders"


@dataclass
class PipelineDemoResult:
    """What one demo run produced: the app's outcome and the processor's groups."""

    outcome: sample_app.Outcome
    groups: Sequence[Any]
    address: str


def run_pipeline_demo(store_directory: Path | None = None) -> PipelineDemoResult:
    """Run the sample app against an embedded processor and return its failure groups.

    The store lives in ``store_directory`` (a temporary directory, removed
    afterwards, when None).
    """
    with tempfile.TemporaryDirectory(prefix="faultlens-demo-") as scratch:
        directory = store_directory or Path(scratch)
        processor = Processor(
            ProcessorSettings(store_path=directory / "faultlens.db", listen="127.0.0.1:0")
        )
        processor.start()
        try:
            outcome = _run_sample_app(processor.address)
            with ControlClient(processor.address) as client:
                groups = list(
                    client.export_groups(
                        control_pb2.ExportGroupsRequest(sort=control_pb2.SORT_KEY_SEVERITY)
                    )
                )
        finally:
            processor.stop(grace=1)
        return PipelineDemoResult(outcome, groups, processor.address)


def _run_sample_app(endpoint: str) -> sample_app.Outcome:
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(
        BatchSpanProcessor(FaultlensSpanExporter(endpoint=endpoint, insecure=True))
    )
    faultlens.configure(tracer_provider=provider)
    sample_app.tracer = provider.get_tracer("faultlens.demo")
    quiet_thread_hook = threading.excepthook
    threading.excepthook = lambda args: None  # the demo shows failures as a table instead
    root = logging.getLogger()
    saved_level = root.level
    root.setLevel(logging.INFO)
    faultlens.install()
    try:
        return sample_app.run()
    finally:
        faultlens.uninstall()
        threading.excepthook = quiet_thread_hook
        root.setLevel(saved_level)
        faultlens.flush()
        provider.force_flush()
        provider.shutdown()
        faultlens.configure(tracer_provider=trace.get_tracer_provider())
