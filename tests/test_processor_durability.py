"""Acknowledged means committed: kill -9 the processor during ingest, restart, count."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import grpc
import pytest
from faultlens_collector.control.client import ControlClient

from tests.processor_support import (
    TRACE_EXPORT,
    ServeProcess,
    all_groups,
    failure_attributes,
    span,
    trace_request,
)

FINGERPRINTS = [f"{index:016x}" for index in range(1, 41)]


class Sender(threading.Thread):
    """Sends requests until the processor dies; counts what was acknowledged."""

    def __init__(self, address: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.random = random.Random(seed)
        self.acknowledged = 0
        self.in_flight = 0

    def run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            call = channel.unary_unary(TRACE_EXPORT)
            while True:
                counts = [self.random.randint(1, 3) for _ in range(self.random.randint(1, 20))]
                spans = [
                    span(
                        index=self.random.randrange(1, 1 << 30),
                        events=[
                            failure_attributes(self.random.choice(FINGERPRINTS), failure_count=n)
                        ],
                    )
                    for n in counts
                ]
                body = trace_request(spans).SerializeToString()
                occurrences = sum(counts)
                self.in_flight = occurrences
                try:
                    call(body, timeout=5)
                except grpc.RpcError:
                    return
                self.acknowledged += occurrences
                self.in_flight = 0


@pytest.mark.slow
def test_every_acknowledged_failure_survives_kill_9(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    acknowledged = 0
    in_flight = 0
    for round_ in range(3):
        with ServeProcess(store) as serve:
            senders = [Sender(serve.address, seed=round_ * 10 + i) for i in range(4)]
            for sender in senders:
                sender.start()
            time.sleep(0.4 + 0.3 * round_)
            serve.kill()
            for sender in senders:
                sender.join(10)
                assert not sender.is_alive()
            acknowledged += sum(sender.acknowledged for sender in senders)
            in_flight += sum(sender.in_flight for sender in senders)
        assert acknowledged > 0
        with ServeProcess(store) as serve, ControlClient(serve.address) as client:
            stored = sum(group.count for group in all_groups(client).values())
        # Everything acknowledged is there; at most the requests cut off mid-flight were
        # committed without their acknowledgement reaching the client.
        assert acknowledged <= stored <= acknowledged + in_flight, (acknowledged, stored, in_flight)
        acknowledged = stored
        in_flight = 0
