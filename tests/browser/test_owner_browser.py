"""The store owner's data pages in a real browser (headless Chromium) over the real server: an app's
page with what it took and its chart (after real calls to the data API), the notices received and one
notice's text, the report drafts, and the who-has search (a form post; another company's customer is
not found). Each page is saved as a screenshot."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import httpx
from playwright.sync_api import Page

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.incident.context import load_facts
from appwarden.incident.delivery import send_notices
from appwarden.incident.notices import draft_notices
from conftest import OWNER_PASSWORD
from console_world import ConsoleWorld
from test_blast_radius import deliver, incident_for

from .conftest import screenshot
from .test_console_browser import csp_errors, sign_in

NewPage = Callable[[], Page]
CONTACT = "security@appwarden.example"


class FakeSmtp:
    """The SMTP server at the edge: accepts every message."""

    def send_message(self, message: EmailMessage) -> None:
        pass

    def quit(self) -> None:
        pass


def traffic(server: str, cw: ConsoleWorld) -> None:
    """Real calls to the data API by invoice-plus for company 0, and earlier deliveries for the chart."""
    t0 = cw.world.tenants[0]
    for days, people in ((17, 7), (9, 12), (3, 4)):  # oldest first, as the ledger records them
        at = utcnow() - timedelta(days=days)
        deliver(cw.world, "invoice-plus", t0, {("name", "raw"): range(people)}, at=at)
    bearer = {"Authorization": f"Bearer {cw.tokens[('invoice-plus', 0)]}"}
    for _ in range(2):
        assert httpx.get(f"{server}/v1/customers", headers=bearer).status_code == 200


def test_owner_sees_what_an_app_took_with_its_chart(
    server: str, new_page: NewPage, console_world: ConsoleWorld
) -> None:
    traffic(server, console_world)
    page = new_page()
    errors = csp_errors(page)
    sign_in(page, server, "owner0", OWNER_PASSWORD)
    screenshot(page, "store_owner-connected-apps")
    page.get_by_role("link", name="Invoice-Plus").first.click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="このアプリが受け取ったデータ").is_visible()
    received = page.get_by_test_id("received")
    assert received.locator("tr[data-field='name'][data-mode='masked'] td.num").inner_text() == "12"
    chart = page.get_by_test_id("deliveries-chart").locator("svg[role='img']")
    assert chart.is_visible()
    assert chart.locator("rect").count() == 30
    assert page.get_by_test_id("holdings").locator("tr[data-field='name']").count() == 1
    screenshot(page, "store_owner-app-data")
    assert errors == []


def test_owner_reads_a_notice_and_finds_the_report_drafts(
    server: str, new_page: NewPage, console_world: ConsoleWorld, db: Database
) -> None:
    traffic(server, console_world)
    ref = incident_for(console_world.world, "invoice-plus")
    drafts = draft_notices(load_facts(db, ref), contact=CONTACT)
    send_notices(db, drafts, incident=ref, smtp_url="smtp://127.0.0.1:2525", sender=CONTACT, actor="test",
                 connector=lambda target: FakeSmtp())  # type: ignore[arg-type,return-value]  # fmt: skip
    page = new_page()
    sign_in(page, server, "owner0", OWNER_PASSWORD)
    page.get_by_role("link", name="お知らせ", exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_test_id("notice").count() == 1
    screenshot(page, "store_owner-notices")
    page.get_by_test_id("notice").get_by_role("link").click()
    page.wait_for_load_state()
    assert "Company 0" in page.get_by_test_id("notice-ja").inner_text()
    screenshot(page, "store_owner-notice")
    page.get_by_role("link", name="報告書の下書き", exact=True).first.click()
    page.wait_for_load_state()
    row = page.get_by_test_id("incident")
    assert ref in row.inner_text()
    with page.expect_download() as download:
        row.get_by_role("link", name="MD").first.click()
    assert download.value.suggested_filename.startswith("report-preliminary-")
    screenshot(page, "store_owner-reports")


def test_owner_searches_who_has_a_customers_data(
    server: str, new_page: NewPage, console_world: ConsoleWorld
) -> None:
    traffic(server, console_world)
    mine = console_world.world.tenants[0].customers[1]
    theirs = console_world.world.tenants[1].customers[1]
    page = new_page()
    errors = csp_errors(page)
    sign_in(page, server, "owner0", OWNER_PASSWORD)
    page.get_by_role("link", name="顧客データの提供先").click()
    page.wait_for_load_state()
    page.get_by_label("電話番号またはメールアドレス").fill("09000000001")
    page.get_by_role("button", name="検索").click()
    page.wait_for_load_state()
    result = page.get_by_test_id("who-has-result")
    assert mine.public_id in result.inner_text()
    assert page.get_by_test_id("who-has-row").count() >= 1
    assert "invoice-plus" in page.get_by_test_id("who-has-row").first.inner_text()
    screenshot(page, "store_owner-who-has")
    assert theirs.phone is not None
    page.get_by_label("電話番号またはメールアドレス").fill(theirs.phone)
    page.get_by_role("button", name="検索").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("not-found").is_visible()
    assert theirs.public_id not in page.content()
    screenshot(page, "store_owner-who-has-not-found")
    assert errors == []
