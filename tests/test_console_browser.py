"""The web console in a real headless Chromium, against a real processor fed by the official
OpenTelemetry exporter: log in with a token, watch failures appear live, filter, select,
bulk dismiss / categorize / fix, open a group, resume and start halts, and a failure
message that is HTML renders as text.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and Playwright; without them these
tests are skipped and say why.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the console extra (faultlens[console]) is missing")
from faultlens_collector._proto.faultlens.v1 import control_pb2
from faultlens_collector.control.client import ControlClient

from tests.console_support import (
    TOKEN,
    Failure,
    Stack,
    console_stack,
    rows,
    wait_js,
    wait_rows,
    wait_until,
)

pytestmark = pytest.mark.slow
XSS = "<img src=x onerror=alert(1)>"
T1, T2, T3 = "1000000000000001", "1000000000000002", "1000000000000003"
L1, L2 = "2000000000000001", "2000000000000002"
V1 = "3000000000000001"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with console_stack(tmp_path_factory.mktemp("browser")) as running:
        running.send(
            Failure(T1, "TimeoutError", "pricing timed out", "timeout", "high", True, "orders"),
            Failure(T2, "TimeoutError", "search timed out", "timeout", "medium", True, "search"),
            Failure(T3, "TimeoutError", "mail timed out", "timeout", "low", True, "mailer"),
            Failure(L1, "KeyError", "'sku'", "lookup", "medium", False, "cart"),
            Failure(L2, "IndexError", "list index out of range", "lookup", "medium", False, "cart"),
            Failure(V1, "ValueError", XSS, "value", "high", False, "orders"),
        )
        with client_of(running) as client:
            wait_until(lambda: client.list_groups(control_pb2.ListGroupsRequest()).total == 6)
        yield running


def client_of(stack: Stack) -> ControlClient:
    return ControlClient(stack.address, token=TOKEN)


def test_log_in_with_a_token(browser: Any, stack: Stack) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{stack.url}/dashboard")
    assert "/login?next=%2Fdashboard" in page.url
    assert page.is_visible("#token")
    page.fill("#actor", "Cleo Ops")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    page.wait_for_selector(".error")
    assert "refused" in page.inner_text(".error") or "wrong" in page.inner_text(".error")
    assert "not-the-token" not in page.url
    page.fill("#actor", "Cleo Ops")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")
    assert page.url.endswith("/dashboard")
    cookies = context.cookies()
    assert [c["httpOnly"] for c in cookies] == [True]
    assert cookies[0]["sameSite"] == "Strict"
    assert TOKEN not in page.content()
    assert page.inner_text("#who").startswith("Cleo Ops")
    context.close()


def test_a_message_that_is_html_renders_as_text(page: Any, stack: Stack) -> None:
    row = page.locator(f"tr[data-fingerprint='{V1}']")
    assert XSS in row.inner_text()
    assert page.locator("main img").count() == 0
    page.goto(f"{stack.url}/groups/{V1}")
    page.wait_for_selector("pre.trace")
    assert XSS in page.inner_text("h1")
    assert page.locator("main img").count() == 0
    page.goto(f"{stack.url}/dashboard")
    page.wait_for_selector(".alert-feed .item")
    assert XSS in page.inner_text("main")
    assert page.locator("main img").count() == 0


def test_new_failures_appear_live_without_moving_the_rows(page: Any, stack: Stack) -> None:
    wait_js(page, "document.body.dataset.live === 'on'")
    before = rows(page)
    sent = time.monotonic()
    stack.send(Failure("4000000000000001", "ZeroDivisionError", "tax rounding", "value", "high"))
    page.wait_for_selector(".banner:not([hidden])", timeout=10_000)
    latency = time.monotonic() - sent
    assert "1 new" in page.inner_text(".banner")
    assert rows(page) == before  # nothing moved under the pointer
    stack.send(Failure(L1, "KeyError", "'sku'", "lookup", "medium", False, "cart"))
    wait_js(
        page, f"document.querySelector(\"tr[data-fingerprint='{L1}'] .count\").textContent === '2'"
    )
    assert rows(page) == before  # updated in place
    page.click(".banner button")
    wait_js(page, "document.querySelector('.banner').hidden")
    assert rows(page)[0] == L1 or rows(page)[0] == "4000000000000001"
    assert "4000000000000001" in rows(page)
    assert latency < 5, latency


def test_filter_with_key_value_terms_and_text(page: Any) -> None:
    page.fill(".search", "category:timeout")
    page.press(".search", "Enter")
    wait_rows(page, {T1, T2, T3})
    page.fill(".search", "category:timeout service:search")
    page.press(".search", "Enter")
    wait_rows(page, {T2})
    page.fill(".search", "handled:false list index")
    page.press(".search", "Enter")
    wait_rows(page, {L2})
    assert "q=handled%3Afalse+list+index" in page.url
    page.fill(".search", "status:bogus")
    page.press(".search", "Enter")
    page.wait_for_selector(".error:not([hidden])")
    assert "status:bogus" in page.inner_text(".error")


def test_bulk_dismiss_selected_rows(page: Any, stack: Stack) -> None:
    page.fill(".search", "category:lookup")
    page.press(".search", "Enter")
    wait_rows(page, {L1, L2})
    page.check(f"tr[data-fingerprint='{L1}'] input.check")
    page.check(f"tr[data-fingerprint='{L2}'] input.check")
    assert "2 selected" in page.inner_text(".bulkbar")
    page.click(".bulkbar [data-bulk=dismiss]")
    page.fill("#f-reason", "cart lookups are retried")
    page.click("dialog.bulk button[type=submit]")
    page.wait_for_selector("dialog.bulk[data-state=done]")
    assert "2 groups dismissed" in page.inner_text("dialog.bulk .status")
    assert page.locator("dialog.bulk .results tr").count() == 2
    page.click("dialog.bulk button[type=submit]")  # Close
    wait_rows(page, set())
    with client_of(stack) as client:
        group = client.get_group(L1)
        assert group.status == "dismissed"
        assert group.dismissal.by == "Cleo Ops"
        audit = client.call("ListAudit", control_pb2.ListAuditRequest(fingerprint=L1)).actions
        assert audit[0].actor == "Cleo Ops"
        client.call(
            "Reopen",
            control_pb2.SetStatusRequest(
                selection=control_pb2.GroupSelection(fingerprints=[L1, L2])
            ),
        )


def test_bulk_categorize_everything_matching(page: Any, stack: Stack) -> None:
    more = [f"6000000000000{index:03x}" for index in range(12)]
    stack.send(*(Failure(fp, "TimeoutError", f"batch {fp} timed out", "timeout") for fp in more))
    page.goto(f"{stack.url}/?q=category%3Atimeout&limit=10")
    page.wait_for_selector("tr.row")
    assert len(rows(page)) == 10
    page.check("thead input.check")
    assert "10 selected" in page.inner_text(".bulkbar")
    page.click(".select-all")  # "Select all 15 matching this search"
    assert "All 15 matching groups selected" in page.inner_text(".bulkbar")
    page.click(".bulkbar [data-bulk=categorize]")
    page.select_option("#f-severity", "critical")
    page.fill("#f-add", "sre")
    page.click("dialog.bulk button[type=submit]")
    page.wait_for_selector("dialog.bulk[data-state=done]")
    assert "15 groups categorized" in page.inner_text("dialog.bulk .status")
    page.click("dialog.bulk button[type=submit]")
    with client_of(stack) as client:
        for fingerprint in (T1, T2, T3, *more):
            group = client.get_group(fingerprint)
            assert (group.severity, list(group.tags)) == ("critical", ["sre"])


def test_bulk_fix_shows_the_hook_runs_finishing(page: Any, stack: Stack) -> None:
    page.fill(".search", "pricing")
    page.press(".search", "Enter")
    wait_rows(page, {T1})
    page.check(f"tr[data-fingerprint='{T1}'] input.check")
    page.click(".bulkbar [data-bulk=fix]")
    assert page.input_value("#f-hook") == "restart"
    page.click("dialog.bulk button[type=submit]")
    page.wait_for_selector("dialog.bulk[data-state=done]", timeout=30_000)
    assert "Hook runs finished: 1 of 1" in page.inner_text("dialog.bulk .status")
    assert re.search(r"ok \(\d", page.inner_text("dialog.bulk .results"))
    page.click("dialog.bulk button[type=submit]")


def test_open_a_group(page: Any, stack: Stack) -> None:
    page.click(f"tr[data-fingerprint='{T2}'] a.type")
    page.wait_for_selector("pre.trace")
    assert page.url.endswith(f"/groups/{T2}")
    assert "Traceback" in page.inner_text("pre.trace")
    assert "search" in page.inner_text("main")  # its service
    link = page.locator(".samples a").first
    href = link.get_attribute("href")
    assert re.fullmatch(r"http://jaeger\.example:16686/trace/[0-9a-f]{32}", href or "")
    assert page.locator(".chart svg rect").count() >= 1
    page.click(".group-actions [data-bulk=resolve]")
    page.click("dialog.bulk button[type=submit]")
    page.wait_for_selector("dialog.bulk[data-state=done]")
    page.click("dialog.bulk button[type=submit]")
    wait_js(page, "document.querySelector('.badges').textContent.includes('resolved')")
    assert "resolve" in page.inner_text("main")  # in the audit trail, by name
    assert "Cleo Ops" in page.inner_text("main")


def test_resume_and_start_halts_with_confirmation(page: Any, stack: Stack) -> None:
    with client_of(stack) as client:
        halt = client.call(
            "StartHalt",
            control_pb2.StartHaltRequest(
                key=[control_pb2.KeyItem(name="service.name", string_value="payments")],
                reason="card processor down",
                actor="rule",
            ),
        )
        page.goto(f"{stack.url}/dashboard")
        page.wait_for_selector(f"tr[data-halt='{halt.id}']")
        page.click(f"tr[data-halt='{halt.id}'] button.resume")
        page.wait_for_selector("dialog.confirm-dialog")
        page.click("dialog.confirm-dialog button.confirm")
        page.wait_for_selector(f"tr[data-halt='{halt.id}']", state="detached")
        assert not client.call("ListHalts", control_pb2.ListHaltsRequest()).halts
        page.fill("form.start-halt input[name=key]", "service.name=cart span.name=checkout")
        page.fill("form.start-halt input[name=reason]", "inventory is down")
        page.click("form.start-halt button")
        page.click("dialog.confirm-dialog button.confirm")
        page.wait_for_selector("tr[data-halt]")
        (started,) = client.call("ListHalts", control_pb2.ListHaltsRequest()).halts
        assert {item.name: item.string_value for item in started.key} == {
            "service.name": "cart",
            "span.name": "checkout",
        }
        actions = client.call("ListAudit", control_pb2.ListAuditRequest(action="halt")).actions
        assert actions[0].actor == "Cleo Ops"


def test_the_dashboard_draws_its_charts_and_thresholds(page: Any, stack: Stack) -> None:
    page.goto(f"{stack.url}/dashboard")
    page.wait_for_selector(".hooks .hook")
    assert page.locator(".chart svg rect").count() >= 3
    assert "70 %" in page.inner_text(".hooks")
    assert "50 %" in page.inner_text(".hooks")
    assert page.locator(".hookbar .mark.warn").count() == 1
    assert int(page.inner_text(".new-count")) >= 6
    stack.send(Failure("5000000000000001", "OSError", "disk full", "io", "critical"))
    page.wait_for_selector(".alert-feed .item.fresh", timeout=10_000)
    assert "disk full" in page.inner_text(".alert-feed")


def test_screenshot_paths_exist() -> None:
    images = Path(__file__).resolve().parent.parent / "docs" / "images"
    for name in ("console-groups.png", "console-group.png", "console-dashboard.png"):
        assert (images / name).stat().st_size > 10_000, name


def test_next_continues_after_the_last_row_while_failures_arrive(
    browser: Any, tmp_path: Path
) -> None:
    """Keyset cursors in the page: failures that arrive (new groups, groups of the first
    page seen again) between two pages neither push rows of page 1 onto page 2 nor hide
    any of the groups that stayed put."""
    start = time.time_ns() - 3_600 * 10**9
    first = [f"40000000000000{index:02x}" for index in range(15)]
    with console_stack(tmp_path) as running:
        running.send(*(Failure(name, time_ns=start + index) for index, name in enumerate(first)))
        with client_of(running) as client:
            wait_until(lambda: client.list_groups(control_pb2.ListGroupsRequest()).total == 15)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{running.url}/login")
            page.fill("#actor", "Cleo Ops")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("tr.row")
            page.goto(f"{running.url}/?tab=all&limit=10")
            wait_rows(page, set(first[5:]))
            page_one = rows(page)
            assert page_one == first[5:][::-1]  # last seen first
            arrived = [f"50000000000000{index:02x}" for index in range(3)]
            running.send(*(Failure(name) for name in [*arrived, first[14], first[13]]))
            wait_until(lambda: client.list_groups(control_pb2.ListGroupsRequest()).total == 18)
            page.click("button.next")
            wait_rows(page, set(first[:5]))  # an offset would show 3 rows of page 1 again
            assert rows(page) == first[:5][::-1]
            page.click("text=← Previous")
            wait_rows(page, {*arrived, first[14], first[13], *first[8:13]})
            context.close()
