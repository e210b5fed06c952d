"""A framework's report of an exception its error handler got is an escaped failure.

Flask logs a view's exception from ``Flask.log_exception`` under the app's own
logger, Django through ``django.request``, uvicorn through ``uvicorn.error``:
those requests failed, so the logged exception is ``failure.handled=false``
(severity at least medium, span status ERROR). The application's own
``logger.exception`` in an ``except`` block stays a handled failure, and so does
a framework's report below ERROR (Django's 404s are warnings).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import faultlens
import pytest
from conftest import Telemetry


@pytest.fixture
def capturing(telemetry: Telemetry) -> Telemetry:
    faultlens.install_logging_capture(force=True)
    return telemetry


def _report(logger: str, level: int = logging.ERROR, **fields: str) -> None:
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        record = logging.getLogger(logger).makeRecord(
            logger,
            level,
            fields.get("pathname", __file__),
            10,
            "Exception on /pay [POST]",
            (),
            sys.exc_info(),
            fields.get("funcName", "handler"),
        )
        logging.getLogger(logger).handle(record)


@pytest.mark.parametrize(
    "logger", ["django.request", "uvicorn.error", "gunicorn.error", "tornado.application"]
)
def test_a_server_or_framework_error_log_is_an_escaped_failure(
    capturing: Telemetry, logger: str
) -> None:
    tracer = capturing.tracer_provider.get_tracer("server")
    with tracer.start_as_current_span("POST /pay"):
        _report(logger)
    event = capturing.only_failure()
    assert event["failure.handled"] is False
    assert event["failure.source"] == "logging"
    assert event["failure.severity"] in {"medium", "high", "critical"}
    assert capturing.finished()[0].status.status_code.name == "ERROR"


def test_flask_log_exception_under_the_app_logger_is_an_escaped_failure(
    capturing: Telemetry,
) -> None:
    site = str(Path("/srv/venv/lib/python3.11/site-packages/flask/app.py"))
    _report("shop", pathname=site, funcName="log_exception")
    assert capturing.only_failure()["failure.handled"] is False


@pytest.mark.parametrize(
    ("logger", "level", "func"),
    [
        ("shop.orders", logging.ERROR, "handler"),  # the application's own log
        ("shop", logging.ERROR, "log_exception"),  # its own log_exception, not Flask's
        ("django.request", logging.WARNING, "handler"),  # a 404 report
    ],
)
def test_other_logged_exceptions_stay_handled(
    capturing: Telemetry, logger: str, level: int, func: str
) -> None:
    _report(logger, level, funcName=func)
    assert capturing.only_failure()["failure.handled"] is True


def test_the_boundary_loggers_are_a_setting(capturing: Telemetry) -> None:
    faultlens.configure(boundary_loggers=("myserver",))
    _report("myserver.errors")
    _report("django.request")
    assert [e["failure.handled"] for e in capturing.failure_events()] == [False, True]
