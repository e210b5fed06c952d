"""The Django app of the zero-code tests: its settings, URLs and views in one module.

``DJANGO_SETTINGS_MODULE=django_settings``; :mod:`django_app` is the WSGI application
gunicorn serves. ``/pay`` raises (Django answers 500 and logs it through the
``django.request`` logger); ``/stock`` catches a failure, logs it and answers 200;
``/health`` is for start-up checks.
"""

from __future__ import annotations

import shop_services
from django.http import HttpRequest, HttpResponse
from django.urls import path

SECRET_KEY = "faultlens-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = __name__
MIDDLEWARE: list[str] = []
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def pay(request: HttpRequest, order: int) -> HttpResponse:
    shop_services.charge(order)
    return HttpResponse("paid")


def stock(request: HttpRequest, sku: str) -> HttpResponse:
    return HttpResponse(shop_services.reserve_or_backorder(sku))


urlpatterns = [
    path("health", health),
    path("pay/<int:order>", pay),
    path("stock/<str:sku>", stock),
]
