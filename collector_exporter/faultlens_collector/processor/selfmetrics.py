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

Counts are kept in process (a dictionary update per request, never per item)
and published as observable counters; queue depths and the group count are
observed when the metric reader collects; the commit duration is recorded once
per transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from opentelemetry.metrics import (
    CallbackOptions,
    Meter,
    MeterProvider,
    Observation,
    get_meter_provider,
)


class LocalCounter:
    """A monotonic count kept in process and published as an observable counter.

    :meth:`add` costs a dictionary update (a ``Counter.add`` of the OTel SDK
    costs several microseconds); the meter reads the totals when it collects.
    Attribute sets are few and fixed (signal, reason), so the table stays small.
    """

    def __init__(self, meter: Meter, name: str, unit: str, description: str) -> None:
        self._totals: dict[tuple[tuple[str, str], ...], int] = {}
        self._lock = threading.Lock()
        meter.create_observable_counter(
            name, callbacks=[self._observe], unit=unit, description=description
        )

    def add(self, amount: int, attributes: Mapping[str, str] | None = None) -> None:
        """Add ``amount`` to the count for ``attributes``."""
        key = tuple(sorted(attributes.items())) if attributes else ()
        with self._lock:
            self._totals[key] = self._totals.get(key, 0) + amount

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = list(self._totals.items())
        return [Observation(total, dict(key)) for key, total in totals]


class ProcessorMetrics:
    """The instruments above, bound to one meter provider (the global one by default)."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        meter = (meter_provider or get_meter_provider()).get_meter("faultlens.processor")
        self.received = LocalCounter(
            meter, "faultlens.processor.items.received", "{item}", "Items received."
        )
        self.failures = LocalCounter(
            meter, "faultlens.processor.failures.received", "{failure}", "Failure events stored."
        )
        self.rejected = LocalCounter(
            meter,
            "faultlens.processor.items.rejected",
            "{item}",
            "Items not accepted, by reason.",
        )
        self.skipped = LocalCounter(
            meter,
            "faultlens.processor.values.skipped",
            "{value}",
            "Attribute values not read (nested past the parser's limit, or undecodable "
            "inside); their failures were kept.",
        )
        self.refused = LocalCounter(
            meter,
            "faultlens.processor.requests.refused",
            "{request}",
            "Requests refused before reading them.",
        )
        self.commit_duration = meter.create_histogram(
            "faultlens.processor.store.commit.duration",
            unit="s",
            description="Time to apply and commit one batch of requests.",
        )
        self.forward_sent = LocalCounter(
            meter,
            "faultlens.processor.forward.sent",
            "{request}",
            "Requests delivered to the next hop.",
        )
        self.forward_dropped = LocalCounter(
            meter,
            "faultlens.processor.forward.dropped",
            "{request}",
            "Requests not delivered to the next hop, by reason.",
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
