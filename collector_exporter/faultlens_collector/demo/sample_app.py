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

:func:`take_payments` is the second act: the card processor refuses every
charge, and a fleet-wide halt guard makes the worker stop calling it once the
faultlens processor halts ``charge-card``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    """Talks to a pricing service that accepts connections but never answers.

    Once ``restarted`` names an existing file (the demo's fix hook creates it),
    the service answers with the list price.
    """

    def __init__(self, restarted: Path | None = None) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(8)
        self.address = self._server.getsockname()
        self._restarted = restarted

    def price(self, sku: str) -> float:
        if self._restarted is not None and self._restarted.exists():
            return LIST_PRICES[sku]
        with socket.create_connection(self.address, timeout=0.05) as conn:
            conn.sendall(f"PRICE {sku}\n".encode())
            conn.recv(64)  # the service never answers: socket.timeout
        return 0.0

    def close(self) -> None:
        self._server.close()


CACHED_PRICES = {"sku-1": 9.99, "sku-2": 24.5, "sku-3": 3.25}
LIST_PRICES = {"sku-1": 10.49, "sku-2": 25.0, "sku-3": 3.5}


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


def process_orders(
    client: PricingClient, skus: list[str], outcome: Outcome, *, first_id: int = 1
) -> None:
    """Price, configure and record one order per SKU."""
    for order_id, sku in enumerate(skus, start=first_id):
        with tracer.start_as_current_span("process-order") as span:
            span.set_attribute("order.id", order_id)
            total = price_with_fallback(client, sku, outcome)
            try:
                load_setting({"currency": "EUR"}, "tax_region")
            except KeyError:
                outcome.escaped += 1
            write_receipt(order_id, total)
            outcome.orders += 1


def run(outcome: Outcome | None = None) -> Outcome:
    """Run the worker once; failures go wherever the OpenTelemetry providers send them."""
    outcome = outcome or Outcome()
    client = PricingClient()
    try:
        process_orders(client, ["sku-1", "sku-2", "sku-3", "sku-1"], outcome)
        with tracer.start_as_current_span("import-batch"):
            import_batch([f"{n}x" for n in range(STORM_RECORDS)], outcome)
        fire_and_forget_refresh()
        worker = threading.Thread(target=reconcile_ledger, name="ledger")
        worker.start()
        worker.join()
    finally:
        client.close()
    return outcome


def more_orders(outcome: Outcome, *, pricing_restarted: Path, count: int = 4) -> None:
    """Process ``count`` more orders (after the fix hook ran: pricing answers again)."""
    client = PricingClient(pricing_restarted)
    try:
        skus = [f"sku-{1 + index % 3}" for index in range(count)]
        process_orders(client, skus, outcome, first_id=outcome.orders + 1)
    finally:
        client.close()


@dataclass
class Payments:
    """What the payment loop did."""

    attempts: int = 0
    failed: int = 0
    refused: int = 0


@faultlens.capture(category="dependency")
def charge_card(order_id: int) -> None:
    raise ConnectionRefusedError(f"card processor refused the charge for order {order_id}")


def take_payments(
    guard: Callable[[], None],
    *,
    max_attempts: int = 100,
    pause: float = 0.1,
    stop_after_refused: int = 3,
) -> Payments:
    """Charge cards until ``guard`` refused ``stop_after_refused`` calls (or attempts run out).

    ``guard`` raises :class:`faultlens.resilience.HaltedError` while the work is halted.
    """
    from faultlens.resilience import HaltedError

    payments = Payments()
    for attempt in range(max_attempts):
        payments.attempts += 1
        with tracer.start_as_current_span("charge-card"):
            try:
                guard()
            except HaltedError:
                payments.refused += 1
                if payments.refused >= stop_after_refused:
                    break
            else:
                try:
                    charge_card(attempt)
                except ConnectionRefusedError:
                    payments.failed += 1
        time.sleep(pause)
    return payments
