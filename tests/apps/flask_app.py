"""A small Flask app for the zero-code tests (served by gunicorn, contrib Flask instrumentation).

``/pay`` raises (Flask answers 500 and logs it through ``app.logger``); ``/stock``
catches a failure, logs it and answers 200; ``/quote`` and ``/order`` call a service
that refuses the connection through ``requests`` (traced by the contrib requests
instrumentation): ``/quote`` catches the ``ConnectionError``, logs it and answers
200, ``/order`` lets it escape (500); ``/health`` is for start-up checks.
"""

from __future__ import annotations

import logging

import requests
import shop_services
from flask import Flask

app = Flask(__name__)
log = logging.getLogger("shop.pricing")
#: The discard port on the loopback: nothing listens, the connection is refused at once.
PRICING = "http://127.0.0.1:9/price"


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/pay/<int:order>")
def pay(order: int) -> str:
    shop_services.charge(order)
    return "paid"


@app.get("/stock/<sku>")
def stock(sku: str) -> str:
    return shop_services.reserve_or_backorder(sku)


@app.get("/quote/<int:order>")
def quote(order: int) -> str:
    try:
        requests.get(PRICING, params={"order": order}, timeout=5)
    except requests.ConnectionError:
        log.exception("pricing unreachable, answering with the cached price")
        return "cached"
    return "live"


@app.get("/order/<int:order>")
def place_order(order: int) -> str:
    requests.get(PRICING, params={"order": order}, timeout=5)
    return "placed"
