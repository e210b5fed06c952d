"""A signal generator that halts a strategy after 3 consecutive failures instead of
trading on garbage, behind a circuit breaker, a retry and a degraded-but-honest fallback.

Run: ``python examples/resilience_signals.py [STATE_FILE]``. Run it twice with the same
state file: the second run starts halted, because halts survive restarts until resumed.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from faultlens.resilience import (
    CircuitBreaker,
    FailureTracker,
    HaltedError,
    constant,
    fallback,
    health,
    retry,
)

feed = CircuitBreaker("market-feed", failure_threshold=2, recovery_timeout=60)


def cached_prices(symbol: str) -> list[float]:
    return [100.0, 100.5, 101.0]  # stale, and the span says so: faultlens.degraded=true


@fallback(cached_prices)
@retry(attempts=2, backoff=constant(0))
@feed
def live_prices(symbol: str) -> list[float]:
    raise ConnectionError(f"feed for {symbol} refused the connection")


def vwap_signal(prices: list[float]) -> str:
    if len(prices) < 5:
        raise ValueError(f"insufficient data points: {len(prices)} < 5")
    return "long"


def main(state_file: Path) -> None:
    signals = FailureTracker("signals", threshold=3, state_file=state_file)
    key = {"strategy": "VWAP", "symbol": "AAPL"}
    for tick in range(5):
        try:
            with signals.tracking(key):
                print(f"tick {tick}: signal {vwap_signal(live_prices('AAPL'))}")
        except HaltedError as halted:
            print(f"tick {tick}: refused: {halted}")
        except ValueError as exc:
            print(f"tick {tick}: no signal ({exc}); nothing traded")
    print(signals.status().summary())
    print(json.dumps(health().as_dict()["status"]))


if __name__ == "__main__":
    default = Path(tempfile.gettempdir()) / "faultlens-example-halts.json"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
