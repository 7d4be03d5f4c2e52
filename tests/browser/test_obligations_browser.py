"""The obligations pages in a real browser (headless Chromium) over the real server: the store owner's
records of provision (filtered, and the CSV downloaded: the bytes ``obligations.service`` writes), what
each vendor may still hold of the owner's company, and the holdings per company × field on the security
team's app page, past retention marked. Each page is saved as a screenshot."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.incident.appi import JST
from appwarden.obligations.service import provision_document
from conftest import OWNER_PASSWORD
from console_world import PASSWORD, ConsoleWorld
from test_blast_radius import deliver

from .conftest import screenshot
from .test_console_browser import csp_errors, sign_in

NewPage = Callable[[], Page]
OLD = 40  # days ago: past the 30-day default retention


def deliveries(cw: ConsoleWorld) -> None:
    """Company 0: loyalty-stamp names 40 days ago, invoice-plus names and phones now; company 1:
    invoice-plus names now."""
    t0, t1 = cw.world.tenants
    deliver(cw.world, "loyalty-stamp", t0, {("name", "masked"): range(6)}, at=utcnow() - timedelta(days=OLD))
    deliver(cw.world, "invoice-plus", t0, {("name", "raw"): range(8), ("phone", "masked"): range(5)})
    deliver(cw.world, "invoice-plus", t1, {("name", "raw"): range(11)})


def test_owner_lists_filters_and_downloads_the_records_of_provision(
    server: str, new_page: NewPage, console_world: ConsoleWorld, db: Database, tmp_path: Path
) -> None:
    deliveries(console_world)
    page = new_page()
    errors = csp_errors(page)
    sign_in(page, server, "owner0", OWNER_PASSWORD)
    page.get_by_role("link", name="第三者提供の記録").first.click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="第三者提供の記録").is_visible()
    records = page.get_by_test_id("record")
    assert records.count() == 2
    assert {records.nth(i).get_attribute("data-app") for i in range(2)} == {"loyalty-stamp", "invoice-plus"}
    stamp = page.locator('tr[data-testid="record"][data-app="loyalty-stamp"]')
    assert "氏名（マスク）" in stamp.inner_text() and "6" in stamp.locator("td.num").inner_text()
    screenshot(page, "store_owner-records")

    today = utcnow().astimezone(JST).date()
    page.get_by_label("開始日").fill((today - timedelta(days=7)).isoformat())
    page.get_by_role("button", name="表示").click()
    page.wait_for_load_state()
    assert records.count() == 1 and records.first.get_attribute("data-app") == "invoice-plus"
    with page.expect_download() as download:
        page.get_by_test_id("records-downloads").get_by_role("link", name="CSV").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    company = console_world.world.tenants[0].company.public_id
    first = today - timedelta(days=7)
    assert saved.name == f"records-provision-{company}-{first.isoformat()}-{today.isoformat()}.csv"
    with db.session() as session:
        expected, _ = provision_document(session, company_ref=company, since=first, until=today, fmt="csv")
    assert saved.read_bytes() == expected
    assert b"invoice-plus" in expected and b"loyalty-stamp" not in expected
    with page.expect_download() as pdf:
        page.get_by_test_id("records-downloads").get_by_role("link", name="PDF").click()
    assert pdf.value.suggested_filename.endswith(".pdf")
    assert errors == []


def test_owner_sees_what_each_vendor_may_still_hold(
    server: str, new_page: NewPage, console_world: ConsoleWorld
) -> None:
    deliveries(console_world)
    page = new_page()
    errors = csp_errors(page)
    sign_in(page, server, "owner0", OWNER_PASSWORD)
    page.get_by_role("link", name="ベンダーが保持しうるデータ").first.click()
    page.wait_for_load_state()
    sections = page.get_by_test_id("app-holdings")
    assert sections.count() == 2
    stamp = page.locator('[data-testid="app-holdings"][data-app="loyalty-stamp"]')
    assert stamp.get_by_test_id("past-retention").is_visible()
    name = stamp.locator("tr[data-field='name'] td.num")
    assert [name.nth(i).inner_text() for i in range(3)] == ["0", "6", "30"]
    invoice = page.locator('[data-testid="app-holdings"][data-app="invoice-plus"]')
    assert invoice.get_by_test_id("past-retention").count() == 0
    assert invoice.locator("tr[data-field='name'] td.num").first.inner_text() == "8"
    assert "11" not in invoice.inner_text()  # company 1's people are not shown
    screenshot(page, "store_owner-holdings")
    stamp.get_by_role("link", name="Loyalty-Stamp").click()
    page.wait_for_load_state()
    assert page.url == f"{server}/console/apps/{console_world.connections[('loyalty-stamp', 0)]}"
    assert errors == []


def test_security_admin_sees_holdings_per_company_with_past_retention_marked(
    server: str, new_page: NewPage, console_world: ConsoleWorld
) -> None:
    t0, t1 = console_world.world.tenants
    deliver(
        console_world.world,
        "invoice-plus",
        t0,
        {("name", "raw"): range(4)},
        at=utcnow() - timedelta(days=OLD),
    )
    deliver(console_world.world, "invoice-plus", t1, {("name", "raw"): range(9)})
    page = new_page()
    errors = csp_errors(page)
    sign_in(page, server, "secadmin", PASSWORD)
    page.goto(f"{server}/console/security/apps/invoice-plus")
    holdings = page.get_by_test_id("holdings")
    past = holdings.locator(f'tbody[data-company="{t0.company.public_id}"]')
    fine = holdings.locator(f'tbody[data-company="{t1.company.public_id}"]')
    assert (
        past.get_attribute("class") == "past-retention" and past.get_by_test_id("past-retention").is_visible()
    )
    assert fine.get_by_test_id("past-retention").count() == 0
    assert (
        past.locator("td.should-not").inner_text() == "4"
        and past.locator("td.retention").inner_text() == "30"
    )
    assert fine.locator("td.may").inner_text() == "9"
    assert page.get_by_test_id("companies-past-retention").inner_text() == "1"
    page.locator("#holdings").scroll_into_view_if_needed()
    screenshot(page, "security_admin-app-holdings")
    assert errors == []
