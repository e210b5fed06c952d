"""Where the processor sends its own metrics: the standard ``OTEL_METRICS_EXPORTER``.

``faultlens serve`` reads ``OTEL_METRICS_EXPORTER`` like any OpenTelemetry
service, except that it defaults to ``none``: the default OTLP endpoint is the
processor's own port, and a processor should not ingest its own telemetry by
accident. ``otlp`` uses the OTLP/gRPC metric exporter (configured by the usual
``OTEL_EXPORTER_OTLP_*`` variables), ``console`` prints to stdout.
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` apply; the service name
defaults to ``faultlens-processor``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

EXPORTERS: Final = ("none", "otlp", "console")


def self_meter_provider(environ: Mapping[str, str] | None = None) -> MeterProvider | None:
    """A meter provider per ``OTEL_METRICS_EXPORTER``; None for ``none`` (the default).

    Raises ``ValueError`` naming the variable for an exporter it does not know.
    """
    env = os.environ if environ is None else environ
    names = [name.strip() for name in env.get("OTEL_METRICS_EXPORTER", "none").split(",")]
    exporters: list[MetricExporter] = []
    for name in filter(None, names):
        if name == "none":
            continue
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            exporters.append(OTLPMetricExporter())
        elif name == "console":
            exporters.append(ConsoleMetricExporter())
        else:
            raise ValueError(
                f"OTEL_METRICS_EXPORTER={name!r} is not supported by faultlens serve; "
                f"use one of {', '.join(EXPORTERS)}"
            )
    if not exporters:
        return None
    resource = Resource.create(
        {"service.name": env.get("OTEL_SERVICE_NAME") or "faultlens-processor"}
    )
    return MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(exporter) for exporter in exporters],
        resource=resource,
    )
