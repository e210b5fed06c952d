"""A small FastAPI app for the zero-code tests (served by uvicorn, contrib FastAPI instrumentation).

``/pay`` raises (Starlette answers 500, uvicorn logs it through ``uvicorn.error``);
``/stock`` catches a failure, logs it and answers 200; ``/health`` is for start-up checks.
"""

from __future__ import annotations

import shop_services
from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/pay/{order}")
async def pay(order: int) -> str:
    shop_services.charge(order)
    return "paid"


@app.get("/stock/{sku}")
def stock(sku: str) -> str:
    return shop_services.reserve_or_backorder(sku)
