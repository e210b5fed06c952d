"""A small Flask app for the zero-code tests (served by gunicorn, contrib Flask instrumentation).

``/pay`` raises (Flask answers 500 and logs it through ``app.logger``); ``/stock``
catches a failure, logs it and answers 200; ``/health`` is for start-up checks.
"""

from __future__ import annotations

import shop_services
from flask import Flask

app = Flask(__name__)


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
