"""Helpers for the web console's tests: a processor with a console in front of it,
failures sent with the official OpenTelemetry exporter, and a real headless Chromium.

The browser is Debian's ``chromium`` driven by Playwright (no browser download);
:func:`browser_or_skip` says why browser tests are skipped when either is missing.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.actions_support import wait_until
from tests.processor_support import running_processor

__all__ = [
    "Failure",
    "Stack",
    "browser",
    "browser_or_skip",
    "console_stack",
    "page",
    "rows",
    "send_failures",
    "wait_js",
    "wait_rows",
    "wait_until",
]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
TOKEN = "console-test-token"
TRACE_URL = "http://jaeger.example:16686/trace/{trace_id}"
HOOK_CONFIG = {
    "hooks": {
        "restart": {
            "command": [sys.executable, "-c", "print('restarted')"],
            "timeout": "10s",
            "verification_window": "1h",
        }
    }
}


@dataclass
class Failure:
    """One failure to send: what the span event carries."""

    fingerprint: str
    exception_type: str = "ValueError"
    message: str = "bad value"
    category: str = "value"
    severity: str = "medium"
    handled: bool = False
    service: str = "checkout"
    stacktrace: str = 'Traceback (most recent call last):\n  File "app.py", line 1, in <module>\n'
    #: When it happened (Unix ns; None: now).
    time_ns: int | None = None


def send_failures(address: str, failures: Sequence[Failure], token: str | None = None) -> None:
    """Send ``failures`` as ``exception`` span events through the official OTLP/gRPC span
    exporter (one TracerProvider per service, flushed before returning)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    by_service: dict[str, list[Failure]] = {}
    for failure in failures:
        by_service.setdefault(failure.service, []).append(failure)
    for service, items in by_service.items():
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(
            SimpleSpanProcessor(
                OTLPSpanExporter(
                    endpoint=address,
                    insecure=True,
                    headers={"authorization": f"Bearer {token}"} if token else None,
                )
            )
        )
        tracer = provider.get_tracer("faultlens.tests")
        for failure in items:
            when = failure.time_ns or time.time_ns()
            span = tracer.start_span(f"handle {failure.category}", start_time=when - 1_000_000)
            try:
                span.add_event(
                    "exception",
                    {
                        "exception.type": failure.exception_type,
                        "exception.message": failure.message,
                        "exception.stacktrace": failure.stacktrace,
                        "failure.fingerprint": failure.fingerprint,
                        "failure.category": failure.category,
                        "failure.severity": failure.severity,
                        "failure.handled": failure.handled,
                        "failure.count": 1,
                    },
                    timestamp=when,
                )
            finally:
                span.end(end_time=when + 1_000_000)
        provider.shutdown()


@dataclass
class Stack:
    """A processor and its console."""

    processor: Any
    console: Any
    token: str | None

    def send(self, *failures: Failure) -> None:
        send_failures(self.address, failures, self.token)

    @property
    def url(self) -> str:
        return str(self.console.url).rstrip("/")

    @property
    def address(self) -> str:
        return str(self.processor.address)


@contextmanager
def console_stack(tmp_path: Path, *, token: str | None = TOKEN, **settings: Any) -> Iterator[Stack]:
    """A real processor (with ``token``) and a console for it on free loopback ports."""
    pytest.importorskip("fastapi", reason="the console extra (faultlens[console]) is missing")
    from faultlens_collector.actions.config import parse_config
    from faultlens_collector.console import ConsoleServer, ConsoleSettings

    with running_processor(
        tmp_path, token=token, actions=parse_config(HOOK_CONFIG), **settings
    ) as processor:
        console = ConsoleServer(
            ConsoleSettings(target=processor.address, listen="127.0.0.1:0", trace_url=TRACE_URL)
        )
        console.start()
        try:
            yield Stack(processor, console, token)
        finally:
            console.stop()


def browser_or_skip() -> Any:
    """A launched headless Chromium (Playwright), or skip saying what is missing."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip(
            "browser tests need Debian's chromium (apt-get install chromium; .ci/run installs it)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need playwright (pip install -e '.[test]')")
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    except Exception as exc:
        manager.stop()
        pytest.skip(f"chromium at {executable} does not start: {str(exc).splitlines()[0]}")
    browser._faultlens_manager = manager  # type: ignore[attr-defined]
    return browser


def close_browser(browser: Any) -> None:
    manager = browser._faultlens_manager
    browser.close()
    manager.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    launched = browser_or_skip()
    yield launched
    close_browser(launched)


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    """A page logged in to the console of the test module's ``stack`` fixture, on its
    groups list; fails the test if a script ran (an alert) or the page raised."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(f"{stack.url}/login")
    opened.fill("#actor", "Cleo Ops")
    opened.fill("#token", TOKEN)
    opened.click("button[type=submit]")
    opened.wait_for_selector("tr.row")
    yield opened
    context.close()
    assert not dialogs, f"a script ran: {dialogs}"
    assert not errors, f"page errors: {errors}"


def wait_js(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Poll a JavaScript expression until it is true (``wait_for_function`` evaluates
    strings with ``eval``, which the console's Content-Security-Policy refuses)."""
    wait_until(lambda: page.evaluate(expression), timeout)


def rows(page: Any) -> list[str]:
    return page.eval_on_selector_all("tr.row", "rows => rows.map(r => r.dataset.fingerprint)")


def wait_rows(page: Any, expected: set[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while set(rows(page)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"rows {rows(page)} != {sorted(expected)}")
        time.sleep(0.05)
