"""Load against a running processor: many clients, acknowledged occurrences counted.

:func:`drive` runs ``clients`` threads, each on its own channel, sending
pre-built trace requests (a seeded mix of fingerprints and ``failure.count``
values, so the occurrences each request stands for are known) back to back
for ``seconds``. Every reply is sorted: acknowledged (its occurrences are
added to ``acknowledged``); told to retry (``UNAVAILABLE`` with a RetryInfo
delay, which the processor sends only for what it did not keep: ``shed`` when
overloaded, ``refused`` for a store error or a commit that did not start in
time); or anything else. A call that ends without an answer the client can
trust (deadline exceeded, connection lost: ``UNAVAILABLE`` without RetryInfo)
adds its occurrences to ``uncertain``: they may or may not have been stored.
So at the end, for a processor that keeps its promise::

    acknowledged <= stored <= acknowledged + uncertain

Used by the overload, crash and dependency scenarios and by the soak mode.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2

from tests.processor_support import TRACE_EXPORT, failure_attributes, span, trace_request

RETRY_TRAILER = "google.rpc.retryinfo-bin"


@dataclass(frozen=True)
class Body:
    """A serialized request and the occurrences it stands for."""

    data: bytes
    occurrences: int


def bodies(seed: int, *, count: int = 16, spans: int = 20, fingerprints: int = 50) -> list[Body]:
    """``count`` distinct trace requests of ``spans`` failures each."""
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        counts = [rng.randint(1, 3) for _ in range(spans)]
        request = trace_request(
            [
                span(
                    index=rng.randrange(1, 1 << 30),
                    events=[
                        failure_attributes(
                            f"{rng.randrange(fingerprints) + 1:016x}",
                            failure_count=n,
                            message=f"load {rng.randrange(1000)}",
                        )
                    ],
                )
                for n in counts
            ],
            service=f"svc{rng.randrange(4)}",
        )
        made.append(Body(request.SerializeToString(), sum(counts)))
    return made


@dataclass
class LoadReport:
    """What the clients saw (see the module docstring)."""

    requests: int = 0
    acknowledged_requests: int = 0
    acknowledged: int = 0
    shed: int = 0
    refused: int = 0
    uncertain: int = 0
    other: Counter[str] = field(default_factory=Counter)
    ok_latencies: list[float] = field(default_factory=list)
    shed_latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def merge(self, other: LoadReport) -> None:
        self.requests += other.requests
        self.acknowledged_requests += other.acknowledged_requests
        self.acknowledged += other.acknowledged
        self.shed += other.shed
        self.refused += other.refused
        self.uncertain += other.uncertain
        self.other.update(other.other)
        self.ok_latencies += other.ok_latencies
        self.shed_latencies += other.shed_latencies

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "acknowledged requests/s": round(self.acknowledged_requests / self.seconds, 1)
            if self.seconds
            else 0,
            "acknowledged occurrences": self.acknowledged,
            "shed (UNAVAILABLE+RetryInfo)": self.shed,
            "refused, retry (UNAVAILABLE+RetryInfo)": self.refused,
            "other outcomes": dict(self.other),
            "uncertain occurrences": self.uncertain,
            "ack latency p50 (ms)": percentile(self.ok_latencies, 50, 1000),
            "ack latency p99 (ms)": percentile(self.ok_latencies, 99, 1000),
            "shed latency p99 (ms)": percentile(self.shed_latencies, 99, 1000),
        }


def percentile(values: Sequence[float], pct: float, scale: float = 1.0) -> float:
    """The ``pct`` percentile of ``values`` times ``scale`` (0 when empty), rounded."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return round(ordered[index] * scale, 2)


def retry_delay(error: grpc.RpcError) -> float | None:
    """The RetryInfo delay an error carries, or None."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == RETRY_TRAILER:
            info = error_details_pb2.RetryInfo.FromString(value)
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


class Client(threading.Thread):
    """One client sending ``bodies`` in a loop until ``stop`` is set (or it fails for good)."""

    def __init__(
        self,
        address: str,
        bodies: Sequence[Body],
        stop: threading.Event,
        *,
        timeout: float = 30.0,
        pause_after_shed: float = 0.005,
        metadata: Sequence[tuple[str, str]] = (),
        give_up_when_unreachable: bool = False,
    ) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.bodies = bodies
        self.stop = stop
        self.timeout = timeout
        self.pause_after_shed = pause_after_shed
        self.metadata = tuple(metadata)
        self.give_up = give_up_when_unreachable
        self.report = LoadReport()

    def run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            call = channel.unary_unary(TRACE_EXPORT)
            index = 0
            while not self.stop.is_set():
                body = self.bodies[index % len(self.bodies)]
                index += 1
                if not self._send(call, body):
                    return

    def _send(self, call: Any, body: Body) -> bool:
        report = self.report
        report.requests += 1
        started = time.monotonic()
        try:
            call(body.data, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as error:
            code = error.code()  # type: ignore[attr-defined]
            if code == grpc.StatusCode.UNAVAILABLE and retry_delay(error) is not None:
                if "overloaded" in (error.details() or ""):  # type: ignore[attr-defined]
                    report.shed += 1
                    report.shed_latencies.append(time.monotonic() - started)
                else:
                    report.refused += 1
                self.stop.wait(self.pause_after_shed)
                return True
            report.other[code.name] += 1
            if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                # No answer from the processor: it may have committed the request.
                report.uncertain += body.occurrences
            return not self.give_up
        report.ok_latencies.append(time.monotonic() - started)
        report.acknowledged_requests += 1
        report.acknowledged += body.occurrences
        return True


def drive(
    address: str,
    *,
    clients: int,
    seconds: float,
    seed: int,
    timeout: float = 30.0,
    spans: int = 20,
    fingerprints: int = 50,
    metadata: Sequence[tuple[str, str]] = (),
) -> LoadReport:
    """Run ``clients`` clients for ``seconds``; their merged report. ``fingerprints``: how
    many distinct ones the requests draw from (many: nearly every failure a new group)."""
    stop = threading.Event()
    threads = [
        Client(
            address,
            bodies(seed * 1000 + index, spans=spans, fingerprints=fingerprints),
            stop,
            timeout=timeout,
            metadata=metadata,
        )
        for index in range(clients)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    total = LoadReport()
    for thread in threads:
        thread.join(timeout + 5)
        assert not thread.is_alive(), "a load client did not finish"
        total.merge(thread.report)
    total.seconds = time.monotonic() - started
    return total
