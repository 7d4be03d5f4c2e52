"""The security team's pages in a real browser (headless Chromium) over the real server: the overview
with its deliveries chart, an app's page, and restricting the app through its form (the data API then
refuses it at once). Each page is saved as a screenshot."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import Page

from console_world import PASSWORD, ConsoleWorld

from .conftest import screenshot
from .test_console_browser import csp_errors, sign_in

NewPage = Callable[[], Page]


def test_the_security_admin_reads_the_overview_and_restricts_an_app(
    server: str, new_page: NewPage, console_world: ConsoleWorld
) -> None:
    bearer = {"Authorization": f"Bearer {console_world.tokens[('invoice-plus', 0)]}"}
    for _ in range(3):  # deliveries for the charts
        assert httpx.get(f"{server}/v1/customers", headers=bearer).status_code == 200
    page = new_page()
    violations = csp_errors(page)
    sign_in(page, server, "secadmin", PASSWORD)
    assert page.url == f"{server}/console/security"
    chart = page.get_by_test_id("deliveries-chart").locator("svg")
    assert chart.get_attribute("role") == "img"
    assert chart.locator("rect").count() == 48
    assert "3 件" in page.get_by_test_id("deliveries-chart").inner_text()
    apps = page.get_by_test_id("apps").locator("tbody tr")
    assert apps.count() == 5
    screenshot(page, "security_admin-overview")

    page.get_by_test_id("apps").get_by_role("link", name="Invoice-Plus").click()
    page.wait_for_url(f"{server}/console/security/apps/invoice-plus")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Invoice-Plus")
    assert page.get_by_test_id("state").inner_text() == "掲載中"
    assert page.get_by_test_id("connections").locator("tbody tr").count() == 2
    assert page.get_by_test_id("deliveries-chart").locator("rect").count() == 30
    screenshot(page, "security_admin-app")

    form = page.get_by_test_id("restrict-form")
    form.get_by_label("停止：すべての呼び出しを拒否").check()
    form.get_by_label("理由").fill("夜間の大量取得")
    form.get_by_role("button", name="制限").click()
    page.wait_for_url(f"{server}/console/security/apps/invoice-plus?done=restricted")
    assert page.get_by_test_id("done").inner_text() == "アプリを制限しました。"
    assert page.get_by_test_id("state").inner_text().startswith("制限中")
    history = page.locator("#lifecycle + table tbody tr").first
    assert "app:listing:restricted" in history.inner_text() and "secadmin" in history.inner_text()
    assert httpx.get(f"{server}/v1/customers", headers=bearer).status_code == 403
    screenshot(page, "security_admin-app-restricted")

    page.get_by_role("link", name="このアプリのすべてのセキュリティイベント").click()
    page.wait_for_url(f"{server}/console/security/events?app=invoice-plus")
    events = page.get_by_test_id("events")
    assert "secadmin" in events.locator('tr[data-tag="app:listing:restricted"]').inner_text()
    assert events.locator('tr[data-tag="broker:call:refused"]').count() >= 1  # the refused call after it
    screenshot(page, "security_admin-events")
    assert violations == []
