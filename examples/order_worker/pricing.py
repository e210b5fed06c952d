"""A stand-in for a remote exchange-rate service (answers from a table, JPY times out)."""

from __future__ import annotations

CACHED_RATES = {"EUR": 1.0, "USD": 1.08, "JPY": 161.0}
_LIVE_RATES = {"EUR": 1.0, "USD": 1.09}


def exchange_rate(currency: str) -> float:
    """The live EUR→``currency`` rate; raises TimeoutError when the service does not answer."""
    if currency not in _LIVE_RATES:
        raise TimeoutError("rates.example.internal:443 did not answer within 2.0 s")
    return _LIVE_RATES[currency]
