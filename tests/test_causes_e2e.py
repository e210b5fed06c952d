"""Root causes end to end: three services, each its own process with its own
``service.name``, exporting with the official OpenTelemetry exporters to ``faultlens
serve``, the trace context propagated between them over HTTP — pricing (plain
OpenTelemetry, not instrumented by faultlens) times out, cart (faultlens, exporting
through the ``faultlens`` exporter: only its failing spans) raises ``UpstreamError``
from the HTTP error, checkout (faultlens, every span over OTLP) raises
``CheckoutError``. The processor names pricing's timeout the root, folds the others
under it, and sends one ``cascade`` alert."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient

from tests.actions_support import wait_until
from tests.otlp_receiver import OtlpReceiver, attributes
from tests.processor_support import ServeProcess

SERVICE = Path(__file__).with_name("causes_service.py")

pytestmark = pytest.mark.slow


@contextmanager
def service(endpoint: str, name: str, *options: str) -> Iterator[str]:
    """A service process; yields its ``/work`` URL; stops it (flushing its spans)."""
    process = subprocess.Popen(
        [sys.executable, str(SERVICE), "--name", name, "--endpoint", endpoint, *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on "), line
        yield f"http://127.0.0.1:{line.split()[-1]}/work"
    finally:
        process.terminate()
        process.wait(30)


def groups(address: str) -> dict[str, Any]:
    with ControlClient(address) as client:
        found = client.list_groups(control_pb2.ListGroupsRequest(limit=100)).groups
    return {group.exception_type: group for group in found}


def test_three_services_one_root_one_alert(tmp_path: Path) -> None:
    with ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver())
        processor = ServeProcess(
            tmp_path / "f.db",
            *("--trace-settle", "1.5", "--alerts", receiver.endpoint),
        ).start()
        stack.callback(processor.stop)
        endpoint = processor.address
        pricing = stack.enter_context(service(endpoint, "pricing", "--sdk", "plain", "--fail"))
        cart = stack.enter_context(
            service(
                endpoint,
                "cart",
                *("--sdk", "faultlens", "--exporter", "faultlens"),
                *("--downstream", pricing, "--raise", "UpstreamError"),
            )
        )
        checkout_options = ("--downstream", cart, "--raise", "CheckoutError")
        checkout = stack.enter_context(
            service(endpoint, "checkout", "--sdk", "faultlens", *checkout_options)
        )
        for _ in range(3):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(checkout, timeout=30)
            assert refused.value.code == 502

        def linked() -> bool:
            found = groups(endpoint)
            return (
                {"TimeoutError", "cart.UpstreamError", "checkout.CheckoutError"} <= found.keys()
                and found["checkout.CheckoutError"].root_fingerprint != ""
                and found["cart.UpstreamError"].root_fingerprint != ""
            )

        wait_until(linked, timeout=60)
        found = groups(endpoint)
        root = found["TimeoutError"]
        assert root.service_counts == {"pricing": 3}
        assert root.pattern == "timing"
        for symptom in ("cart.UpstreamError", "checkout.CheckoutError"):
            assert found[symptom].root_fingerprint == root.fingerprint
            assert found[symptom].pattern == "cascade"
            (link,) = found[symptom].caused_by
            assert (link.fingerprint, link.traces, link.share) == (root.fingerprint, 3, 1.0)
        assert {link.fingerprint for link in root.causes} == {
            found["cart.UpstreamError"].fingerprint,
            found["checkout.CheckoutError"].fingerprint,
        }

        def alerted() -> list[dict[str, Any]]:
            return [attributes(record.attributes) for _, record in receiver.log_records()]

        wait_until(alerted, timeout=30)
        (alert,) = alerted()
        assert alert["faultlens.alert.kind"] == "cascade"
        assert alert["failure.fingerprint"] == root.fingerprint
        assert set(alert["faultlens.cascade.services"]) == {"cart", "checkout"}
        assert set(alert["faultlens.cascade.groups"]) == {
            found["cart.UpstreamError"].fingerprint,
            found["checkout.CheckoutError"].fingerprint,
        }
