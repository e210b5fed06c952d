"""A plain worker: swallows and logs ``count`` failures, says so, then waits to be killed.

Run as ``python plain_burst.py COUNT`` under ``opentelemetry-instrument``; the
test sends SIGTERM once it has printed ``ready``.
"""

from __future__ import annotations

import logging
import sys
import time

import shop_services

log = logging.getLogger("shop.worker")


def main(count: int) -> None:
    for order in range(count):
        try:
            shop_services.charge(order)
        except shop_services.PaymentDeclinedError:
            log.exception("charge failed, order parked")
    print("ready", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main(int(sys.argv[1]))
