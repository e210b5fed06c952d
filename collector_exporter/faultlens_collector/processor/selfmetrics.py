"""The processor's own telemetry: how much it ingests, rejects, queues and stores.

Instruments (meter ``faultlens.processor``):

=========================================== ============= ==========================================
name                                        unit          attributes
=========================================== ============= ==========================================
``faultlens.processor.items.received``      ``{item}``    ``signal`` (spans, log records, metric
                                                          requests received and decoded)
``faultlens.processor.failures.received``   ``{failure}`` ``signal`` (failure events stored)
``faultlens.processor.items.rejected``      ``{item}``    ``signal``, ``reason``: ``invalid``
                                                          (partial success), ``overloaded``,
                                                          ``store_error``
``faultlens.processor.requests.refused``    ``{request}`` ``reason``: ``unauthenticated``,
                                                          ``undecodable``, ``overloaded``
                                                          (shed before reading)
``faultlens.processor.store.commit.duration`` ``s``       — (one per transaction)
``faultlens.processor.queue.depth``         ``{request}`` ``queue``: ``store``, ``forward``
``faultlens.processor.forward.queue.size``  ``By``        —
``faultlens.processor.forward.sent``        ``{request}`` —
``faultlens.processor.forward.dropped``     ``{request}`` ``reason`` (see the forwarder)
``faultlens.processor.groups``              ``{group}``   — (failure groups in the store)
=========================================== ============= ==========================================

Counters are added once per request (never per item); queue depths and the
group count are observed when the metric reader collects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter_provider


class ProcessorMetrics:
    """The instruments above, bound to one meter provider (the global one by default)."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        meter = (meter_provider or get_meter_provider()).get_meter("faultlens.processor")
        self.received = meter.create_counter(
            "faultlens.processor.items.received", unit="{item}", description="Items received."
        )
        self.failures = meter.create_counter(
            "faultlens.processor.failures.received",
            unit="{failure}",
            description="Failure events stored.",
        )
        self.rejected = meter.create_counter(
            "faultlens.processor.items.rejected",
            unit="{item}",
            description="Items not accepted, by reason.",
        )
        self.refused = meter.create_counter(
            "faultlens.processor.requests.refused",
            unit="{request}",
            description="Requests refused before reading them.",
        )
        self.commit_duration = meter.create_histogram(
            "faultlens.processor.store.commit.duration",
            unit="s",
            description="Time to apply and commit one batch of requests.",
        )
        self.forward_sent = meter.create_counter(
            "faultlens.processor.forward.sent",
            unit="{request}",
            description="Requests delivered to the next hop.",
        )
        self.forward_dropped = meter.create_counter(
            "faultlens.processor.forward.dropped",
            unit="{request}",
            description="Requests not delivered to the next hop, by reason.",
        )
        self._meter = meter

    def observe(
        self,
        *,
        store_queue: Callable[[], int],
        forward_queue: Callable[[], int] | None,
        forward_bytes: Callable[[], int] | None,
        groups: Callable[[], int],
    ) -> None:
        """Register the observable gauges reading the given live values."""

        def depths(options: CallbackOptions) -> Iterable[Observation]:
            yield Observation(store_queue(), {"queue": "store"})
            if forward_queue is not None:
                yield Observation(forward_queue(), {"queue": "forward"})

        self._meter.create_observable_gauge(
            "faultlens.processor.queue.depth",
            callbacks=[depths],
            unit="{request}",
            description="Requests waiting, by queue.",
        )
        if forward_bytes is not None:
            self._meter.create_observable_gauge(
                "faultlens.processor.forward.queue.size",
                callbacks=[lambda options: [Observation(forward_bytes())]],
                unit="By",
                description="Bytes of requests waiting to be forwarded.",
            )
        self._meter.create_observable_gauge(
            "faultlens.processor.groups",
            callbacks=[lambda options: [Observation(groups())]],
            unit="{group}",
            description="Failure groups in the store.",
        )
