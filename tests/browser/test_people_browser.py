"""A person's history in a real browser: the security admin searches by phone number (the form posts;
the number never appears in the address bar) and lands on the person's page with what each app
received of their data and the events naming them."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import Page

from console_world import PASSWORD, ConsoleWorld

from .conftest import screenshot
from .test_console_browser import csp_errors, sign_in

NewPage = Callable[[], Page]


def test_the_security_admin_finds_a_person_by_phone(
    server: str, new_page: NewPage, console_world: ConsoleWorld
) -> None:
    bearer = {"Authorization": f"Bearer {console_world.tokens[('loyalty-stamp', 0)]}"}
    assert httpx.get(f"{server}/v1/customers", headers=bearer).status_code == 200
    customer = next(c for c in console_world.world.tenants[0].customers if c.phone)
    assert customer.phone is not None
    page = new_page()
    violations = csp_errors(page)
    sign_in(page, server, "secadmin", PASSWORD)
    page.get_by_role("link", name="個人の履歴").first.click()
    page.wait_for_url(f"{server}/console/security/people")
    page.get_by_label("顧客ID・電話番号・メールアドレス").fill(customer.phone.replace("-", ""))
    page.get_by_role("button", name="検索").click()
    page.wait_for_url(f"{server}/console/security/people/{customer.public_id}")
    assert customer.phone.replace("-", "") not in page.url
    received = page.get_by_test_id("person-received").locator("tbody tr[data-app='loyalty-stamp']")
    assert received.count() >= 1
    events = page.get_by_test_id("events").locator("tbody tr[data-tag='user:customer:looked-up']")
    assert events.count() == 1 and "secadmin" in events.inner_text()
    screenshot(page, "security_admin-person")
    assert violations == []
