"""A seeded program whose failures faultlens records: it prints its random draws as JSON.

Between draws it swallows and logs exceptions (recorded with no span around, so
on ``faultlens.failure`` spans of their own), retries a refused call with jittered
exponential backoff until it gives up, and lets a thread die of an uncaught exception. None of it
may move the global ``random`` state it seeded.
"""

import contextlib
import json
import logging
import random
import threading

from faultlens.resilience import Retry, exponential

log = logging.getLogger("seeded")


def refused() -> str:
    raise ConnectionError("refused")


def die() -> None:
    raise RuntimeError("thread died")


def main() -> None:
    random.seed(42)
    draws = []
    policy = Retry("seeded", attempts=3, backoff=exponential(0.001))
    for round_ in range(4):
        try:
            {}["missing"]
        except KeyError:
            log.exception("lookup failed in round %d", round_)
        draws.append(random.random())
        with contextlib.suppress(ConnectionError):
            policy.call(refused)
        draws.append(random.random())
    thread = threading.Thread(target=die)
    thread.start()
    thread.join()
    draws.append(random.random())
    print(json.dumps(draws))


if __name__ == "__main__":
    main()
