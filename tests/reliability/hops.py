"""Next hops that misbehave, and reading the processor's own metrics.

:class:`SlowReceiver` is an OTLP receiver that takes ``delay`` seconds per
request (a congested collector). :func:`metric_totals` reads the last value of
every counter the processor exported to an :class:`~tests.otlp_receiver.OtlpReceiver`
(``OTEL_METRICS_EXPORTER=otlp``), so tests check the processor's telemetry the
way an operator reads it.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from tests.otlp_receiver import OtlpReceiver, attributes


class SlowReceiver(OtlpReceiver):
    """An OTLP receiver that answers each request after ``delay`` seconds."""

    def __init__(self, delay: float, port: int = 0) -> None:
        super().__init__(port)
        self.delay = delay

    def _record(self, signal: str, request: Any, context: Any) -> None:
        time.sleep(self.delay)
        super()._record(signal, request, context)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metric_env(receiver: OtlpReceiver, interval_ms: int = 500) -> dict[str, str]:
    """Environment making ``faultlens serve`` export its own metrics to ``receiver``."""
    return {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{receiver.endpoint}",
        "OTEL_METRIC_EXPORT_INTERVAL": str(interval_ms),
    }


def metric_totals(receiver: OtlpReceiver) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
    """The latest value of every sum and gauge data point, by (name, sorted attributes)."""
    latest: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[int, float]] = {}
    with receiver._lock:
        requests = list(receiver.requests["metrics"])
    for request in requests:
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind not in ("sum", "gauge"):
                        continue
                    for point in getattr(metric, kind).data_points:
                        key = (metric.name, tuple(sorted(attributes(point.attributes).items())))
                        value = point.as_int if point.HasField("as_int") else point.as_double
                        if key not in latest or point.time_unix_nano >= latest[key][0]:
                            latest[key] = (point.time_unix_nano, value)
    return {key: value for key, (_, value) in latest.items()}


def total(
    totals: dict[tuple[str, tuple[tuple[str, Any], ...]], float], name: str
) -> dict[str, float]:
    """A counter's latest values by its attributes rendered ``k=v`` (``""`` for none)."""
    return {
        ",".join(f"{k}={v}" for k, v in attrs): value
        for (metric, attrs), value in totals.items()
        if metric == name
    }
