"""Take the screenshots in docs/images/ of the web console, from a real run.

Starts a processor (with a fix hook) and a console for it, sends failures from a few
services through the official OpenTelemetry exporter, resolves one group so it
regresses, dismisses one, runs the fix hook, starts a halt, then photographs the list,
a bulk action, a group and the dashboard in headless Chromium (Debian's ``chromium``
driven by Playwright)::

    .venv/bin/python docs/console_screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from faultlens_collector._proto.faultlens.v1 import control_pb2  # noqa: E402
from faultlens_collector.control.client import ControlClient  # noqa: E402

from tests.console_support import (  # noqa: E402
    CHROMIUM_ARGS,
    TOKEN,
    Failure,
    console_stack,
)

TRACE = (
    'Traceback (most recent call last):\n  File "/srv/{svc}/app/{mod}.py", line {line}, '
    "in {fn}\n    {code}\n{exc}: {msg}\n"
)
CATALOGUE = [
    (
        "orders",
        "pricing.PricingTimeout",
        "pricing service did not answer within 2.0 s",
        "timeout",
        "high",
        True,
    ),
    ("orders", "KeyError", "'sku'", "lookup", "medium", False),
    (
        "cart",
        "httpx.ConnectError",
        "[Errno 111] Connection refused: inventory:8080",
        "connection",
        "high",
        True,
    ),
    ("cart", "ValueError", "quantity must be positive, got -1", "validation", "low", False),
    ("payments", "stripe.error.CardError", "Your card was declined.", "dependency", "medium", True),
    (
        "payments",
        "RuntimeError",
        "charge-card halted: card processor down",
        "halted",
        "high",
        False,
    ),
    ("search", "TimeoutError", "elasticsearch query exceeded 5 s", "timeout", "medium", True),
    (
        "search",
        "json.JSONDecodeError",
        "Expecting value: line 1 column 1 (char 0)",
        "value",
        "medium",
        False,
    ),
    (
        "mailer",
        "smtplib.SMTPServerDisconnected",
        "Connection unexpectedly closed",
        "connection",
        "low",
        True,
    ),
    (
        "orders",
        "sqlalchemy.exc.OperationalError",
        "could not obtain connection from pool within 30 s",
        "resource",
        "critical",
        False,
    ),
    (
        "reports",
        "OSError",
        "[Errno 28] No space left on device: '/var/spool/reports'",
        "io",
        "critical",
        False,
    ),
    (
        "cart",
        "AttributeError",
        "'NoneType' object has no attribute 'items'",
        "attribute",
        "high",
        False,
    ),
]


def failures() -> list[Failure]:
    rng = random.Random(3)
    now = time.time_ns()
    sent = []
    for index, (service, kind, message, category, severity, handled) in enumerate(CATALOGUE):
        trace = TRACE.format(
            svc=service,
            mod=kind.split(".")[0].lower(),
            line=40 + index,
            fn="handle",
            code="return client.call(request)",
            exc=kind,
            msg=message,
        )
        start = rng.uniform(0, 26)  # hours ago it began, spread over the last day
        for _ in range(rng.choice((3, 5, 8, 13, 21, 34, 55))):
            ago = rng.uniform(0, start) ** 1.3 / start**0.3  # more of it lately
            sent.append(
                Failure(
                    f"{index + 1:04x}{rng.getrandbits(48):012x}",
                    kind,
                    message,
                    category,
                    severity,
                    handled,
                    service,
                    trace,
                    now - int(ago * 3600e9),
                )
            )
    # the fingerprint must be the same for repeats of one defect
    by_message: dict[str, str] = {}
    for failure in sent:
        failure.fingerprint = by_message.setdefault(failure.message, failure.fingerprint)
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, console_stack(Path(scratch)) as stack:
        sent = failures()
        stack.send(*sent)
        fingerprints = list(dict.fromkeys(f.fingerprint for f in sent))
        with ControlClient(stack.address, token=TOKEN, timeout=30) as client:

            def select(*indexes: int) -> control_pb2.GroupSelection:
                return control_pb2.GroupSelection(fingerprints=[fingerprints[i] for i in indexes])

            client.call(
                "Resolve", control_pb2.SetStatusRequest(selection=select(6), actor="Ann Lee")
            )
            client.call(
                "Dismiss",
                control_pb2.DismissRequest(
                    selection=select(8), reason="mailer is best-effort; OPS-311", actor="Ann Lee"
                ),
            )
            client.call(
                "Fix", control_pb2.FixRequest(selection=select(0), hook="restart", actor="Bo Chen")
            )
            client.call(
                "StartHalt",
                control_pb2.StartHaltRequest(
                    key=[
                        control_pb2.KeyItem(name="service.name", string_value="payments"),
                        control_pb2.KeyItem(name="span.name", string_value="charge-card"),
                    ],
                    reason="card processor refuses every charge",
                    actor="Bo Chen",
                ),
            )
            time.sleep(1.0)
            stack.send(*[f for f in sent if f.fingerprint == fingerprints[6]][:2])  # a regression
            time.sleep(1.0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{stack.url}/login")
            page.screenshot(path=str(args.out / "console-login.png"))
            page.fill("#actor", "Ann Lee")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("tr.row")
            page.screenshot(path=str(args.out / "console-groups.png"))
            stack.send(
                Failure(
                    "f00d00000000cafe",
                    "ZeroDivisionError",
                    "division by zero in tax rounding",
                    "value",
                    "high",
                    False,
                    "orders",
                )
            )
            page.wait_for_selector(".banner:not([hidden])")
            page.check("tr.row >> nth=1 >> input.check")
            page.check("tr.row >> nth=3 >> input.check")
            page.click("[data-bulk=dismiss]")
            page.fill("#f-reason", "known flaky upstream; tracked in OPS-412")
            page.screenshot(path=str(args.out / "console-bulk.png"))
            page.keyboard.press("Escape")
            page.goto(f"{stack.url}/groups/{fingerprints[0]}")
            page.wait_for_selector("pre.trace")
            page.screenshot(path=str(args.out / "console-group.png"), full_page=True)
            page.goto(f"{stack.url}/dashboard")
            page.wait_for_selector(".hooks")
            page.screenshot(path=str(args.out / "console-dashboard.png"), full_page=True)
            browser.close()
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
