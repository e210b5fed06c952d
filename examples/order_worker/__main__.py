"""``python -m order_worker``: process a batch of orders from a queue, then report.

One worker thread takes orders off a queue. A failing order is logged and
skipped, so the batch always finishes and the process exits 0: exactly the kind
of program whose failures nobody sees.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading

from order_worker import jobs
from order_worker.inventory import Inventory

log = logging.getLogger("order_worker")

ORDERS: list[jobs.Order] = [
    {"id": "A-1001", "sku": "KB-87", "qty": 2, "currency": "EUR"},
    {"id": "A-1002", "sku": "MS-11", "qty": 1, "currency": "JPY"},  # pricing times out
    {"id": "A-1003", "sku": "HD-404", "qty": 1, "currency": "EUR"},  # unknown SKU
    {"id": "A-1004", "sku": "MS-11", "qty": 3, "currency": "USD"},
]


def work(inbox: queue.Queue[jobs.Order | None], inventory: Inventory, done: list[str]) -> None:
    """Process orders until the ``None`` sentinel; log and skip the ones that fail."""
    while (order := inbox.get()) is not None:
        try:
            receipt = jobs.process(order, inventory)
        except Exception:
            log.exception("order %s failed; moving on", order["id"])
        else:
            done.append(receipt)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    inbox: queue.Queue[jobs.Order | None] = queue.Queue()
    for order in ORDERS:
        inbox.put(order)
    inbox.put(None)
    done: list[str] = []
    worker = threading.Thread(target=work, args=(inbox, Inventory(), done), name="worker-1")
    worker.start()
    worker.join()
    for receipt in done:
        log.info("%s", receipt)
    print(f"processed {len(done)} of {len(ORDERS)} orders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
