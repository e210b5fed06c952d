"""A small order-processing worker that fails the ways real services fail.

It is the program ``faultlens demo`` runs through the SDK: every failure here is
real (raised by the standard library or by the code below), some are swallowed
and logged (*silent* failures), some escape, one storms.

* the pricing client times out and the worker falls back to a cached price,
  logging the exception — a silent ``timeout`` failure;
* reading a missing configuration key raises ``KeyError`` out of a captured
  function — an escaped ``lookup`` failure;
* the receipt spool is on a full disk (``/dev/full``): ``OSError(ENOSPC)``,
  recorded explicitly with ``faultlens.record_failure`` — a ``resource`` failure;
* a batch of malformed records makes ``int()`` fail thousands of times with
  different messages — one fingerprint, aggregated, counted exactly;
* an asyncio task fails and nobody retrieves its result;
* a background thread dies with ``ZeroDivisionError`` (``threading.excepthook``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
from dataclasses import dataclass

import faultlens
from opentelemetry import trace

log = logging.getLogger("demo.orders")
tracer = trace.get_tracer("faultlens.demo")

#: How many malformed records the storm step parses.
STORM_RECORDS = 5_000


@dataclass
class Outcome:
    """What the sample program did, for the demo to report next to the failures."""

    orders: int = 0
    fallbacks: int = 0
    escaped: int = 0
    storm_failures: int = 0


class PricingClient:
    """Talks to a pricing service that accepts connections but never answers."""

    def __init__(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(8)
        self.address = self._server.getsockname()

    def price(self, sku: str) -> float:
        with socket.create_connection(self.address, timeout=0.05) as conn:
            conn.sendall(f"PRICE {sku}\n".encode())
            conn.recv(64)  # the service never answers: socket.timeout
        return 0.0

    def close(self) -> None:
        self._server.close()


CACHED_PRICES = {"sku-1": 9.99, "sku-2": 24.5, "sku-3": 3.25}


def price_with_fallback(client: PricingClient, sku: str, outcome: Outcome) -> float:
    try:
        return client.price(sku)
    except OSError:
        log.exception("pricing service failed for %s; using cached price", sku)
        outcome.fallbacks += 1
        return CACHED_PRICES[sku]


@faultlens.capture
def load_setting(settings: dict[str, str], key: str) -> str:
    return settings[key]


#: A device that reports "No space left on device" on every write, even for root.
RECEIPT_SPOOL = "/dev/full"


def write_receipt(order_id: int, total: float) -> bool:
    try:
        with open(RECEIPT_SPOOL, "w", encoding="utf-8") as handle:
            handle.write(f"order {order_id}: {total:.2f}\n")
    except OSError as exc:
        faultlens.record_failure(exc, attributes={"order.id": order_id})
        return False
    return True


def parse_quantity(raw: str) -> int:
    return int(raw)


def import_batch(records: list[str], outcome: Outcome) -> int:
    imported = 0
    for raw in records:
        try:
            imported += parse_quantity(raw)
        except ValueError as exc:
            faultlens.record_failure(exc, attributes={"batch.size": len(records)})
            outcome.storm_failures += 1
    return imported


async def _refresh_cache() -> None:
    raise ConnectionResetError("cache node reset the connection")


def fire_and_forget_refresh() -> None:
    async def main() -> None:
        asyncio.get_running_loop().create_task(_refresh_cache())
        await asyncio.sleep(0.01)

    asyncio.run(main())
    gc.collect()  # the forgotten task is reported when it is collected


def reconcile_ledger() -> None:
    totals = {"debit": 120, "credit": 0}
    ratio = totals["debit"] / totals["credit"]
    log.info("ratio %s", ratio)


def run(outcome: Outcome | None = None) -> Outcome:
    """Run the worker once; failures go wherever the OpenTelemetry providers send them."""
    outcome = outcome or Outcome()
    client = PricingClient()
    try:
        for order_id, sku in enumerate(["sku-1", "sku-2", "sku-3", "sku-1"], start=1):
            with tracer.start_as_current_span("process-order") as span:
                span.set_attribute("order.id", order_id)
                total = price_with_fallback(client, sku, outcome)
                try:
                    load_setting({"currency": "EUR"}, "tax_region")
                except KeyError:
                    outcome.escaped += 1
                write_receipt(order_id, total)
                outcome.orders += 1
        with tracer.start_as_current_span("import-batch"):
            import_batch([f"{n}x" for n in range(STORM_RECORDS)], outcome)
        fire_and_forget_refresh()
        worker = threading.Thread(target=reconcile_ledger, name="ledger")
        worker.start()
        worker.join()
    finally:
        client.close()
    return outcome
