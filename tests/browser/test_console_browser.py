"""The console in a real browser (headless Chromium) over the real server: every role signs in; a
store owner cannot open another company's page by URL, nor a vendor another vendor's; the CSRF token
is enforced; the Disconnect button cuts the app off at once. Each main page is saved as a screenshot."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Route

from conftest import OWNER_PASSWORD
from console_world import PASSWORD, ConsoleWorld

from .conftest import screenshot

NewPage = Callable[[], Page]

ROLES = [
    ("store_owner", "owner0", OWNER_PASSWORD, "/console/apps", "連携中のアプリ"),
    ("security_admin", "secadmin", PASSWORD, "/console/security", "セキュリティチーム"),
    ("reviewer", "reviewer1", PASSWORD, "/console/reviews", "審査"),
    ("vendor", "vendor-a-dev", PASSWORD, "/console/vendor/apps", "自社のアプリ"),
]


def sign_in(page: Page, server: str, username: str, password: str) -> None:
    page.goto(f"{server}/console/login")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_load_state()


def csp_errors(page: Page) -> list[str]:
    """Collects the page's CSP violations (a blocked inline script or style would show here)."""
    found: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", seen)
    return found


@pytest.mark.parametrize(("role", "username", "password", "home", "heading"), ROLES)
def test_each_role_signs_in_to_its_landing_page(
    server: str, new_page: NewPage, role: str, username: str, password: str, home: str, heading: str
) -> None:
    page = new_page()
    violations = csp_errors(page)
    page.goto(f"{server}/console/login")
    assert page.locator("html").get_attribute("lang") == "ja"
    screenshot(page, "login")
    sign_in(page, server, username, password)
    assert page.url == f"{server}{home}"
    assert page.get_by_role("heading", level=1).inner_text().startswith(heading)
    assert username in page.get_by_test_id("who").inner_text()
    assert page.evaluate("typeof window.htmx") == "object"  # htmx loaded from /console/static under the CSP
    screenshot(page, f"{role}-home")
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en" and page.url == f"{server}{home}"
    screenshot(page, f"{role}-home-en")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server}/console/login")
    assert violations == []


def test_a_wrong_password_shows_the_error_and_signs_nobody_in(server: str, new_page: NewPage) -> None:
    page = new_page()
    sign_in(page, server, "owner0", "not-the-password")
    assert page.get_by_role("alert").inner_text() == "ユーザー名またはパスワードが違います。"
    assert page.goto(f"{server}/console/apps").url.startswith(f"{server}/console/login")  # type: ignore[union-attr]


def test_a_store_owner_cannot_open_another_companys_app_by_url(
    server: str, new_page: NewPage, console_world: ConsoleWorld
) -> None:
    page = new_page()
    sign_in(page, server, "owner0", OWNER_PASSWORD)
    mine = console_world.connections[("invoice-plus", 0)]
    theirs = console_world.connections[("invoice-plus", 1)]
    response = page.goto(f"{server}/console/apps/{mine}")
    assert response is not None and response.status == 200
    screenshot(page, "store_owner-app")
    response = page.goto(f"{server}/console/apps/{theirs}")
    assert response is not None and response.status == 404
    assert theirs not in page.content() or "そのような" in page.content()
    screenshot(page, "store_owner-other-company-404")
    response = page.goto(f"{server}/console/vendor/apps")
    assert response is not None and response.status == 403


def test_a_vendor_cannot_open_another_vendors_app_by_url(server: str, new_page: NewPage) -> None:
    page = new_page()
    sign_in(page, server, "vendor-a-dev", PASSWORD)
    response = page.goto(f"{server}/console/vendor/apps/vendor-a-app")
    assert response is not None and response.status == 200
    screenshot(page, "vendor-app")
    response = page.goto(f"{server}/console/vendor/apps/vendor-b-app")
    assert response is not None and response.status == 404
    response = page.goto(f"{server}/console/apps")
    assert response is not None and response.status == 403


def test_the_csrf_token_is_enforced(server: str, new_page: NewPage, console_world: ConsoleWorld) -> None:
    page = new_page()
    sign_in(page, server, "owner0", OWNER_PASSWORD)
    conn = console_world.connections[("invoice-plus", 0)]
    url = f"{server}/console/apps/{conn}/disconnect"
    # The browser's own cookies, as a forged cross-site form would send them (SameSite aside).
    assert page.request.post(url, form={}).status == 403
    assert page.request.post(url, form={"csrf_token": "forged"}).status == 403
    token = console_world.tokens[("invoice-plus", 0)]
    api = httpx.get(f"{server}/v1/customers", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200  # still connected
    page.goto(f"{server}/console/apps")
    assert page.locator(f"#row-{conn}").get_attribute("class") == "status-active"


def test_disconnect_revokes_the_app_at_once(
    server: str, new_page: NewPage, console_world: ConsoleWorld
) -> None:
    page = new_page()
    sign_in(page, server, "owner0", OWNER_PASSWORD)
    conn = console_world.connections[("invoice-plus", 0)]
    token = console_world.tokens[("invoice-plus", 0)]
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server}/v1/customers", headers=bearer).status_code == 200
    screenshot(page, "store_owner-apps")
    dialogs: list[str] = []

    def accept(dialog: object) -> None:
        dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept()  # type: ignore[attr-defined]

    page.on("dialog", accept)
    row = page.locator(f"#row-{conn}")
    row.get_by_role("button", name="連携を解除").click()
    page.locator(f"#row-{conn}.status-revoked").wait_for()  # htmx swapped the row in place
    assert len(dialogs) == 1 and "連携を解除しますか" in dialogs[0]
    assert "連携を解除しました" in page.locator(f"#row-{conn}").inner_text()
    screenshot(page, "store_owner-apps-disconnected")
    assert httpx.get(f"{server}/v1/customers", headers=bearer).status_code == 401
    other = {"Authorization": f"Bearer {console_world.tokens[('invoice-plus', 1)]}"}
    assert httpx.get(f"{server}/v1/customers", headers=other).status_code == 200


def test_docs_render_offline(server: str, new_page: NewPage) -> None:
    """/docs draws Swagger UI with every request to another origin refused (as offline)."""
    page = new_page()
    elsewhere: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_local)
    page.goto(f"{server}/docs")
    title = page.locator(".swagger-ui .info .title")
    title.wait_for()
    assert title.inner_text().startswith("appwarden")
    assert page.locator(".opblock").count() > 10  # the operations were drawn from /openapi.json
    screenshot(page, "docs", full_page=False)
    assert elsewhere == []
