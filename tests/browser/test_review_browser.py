"""Screening in a real browser (headless Chromium) over the real server: a vendor registers an app,
asks for scopes with justifications, declares volume and retention, answers the questionnaire, uploads
evidence and submits; a reviewer approves one scope in a weaker mode and a second reviewer signs off.
Each step's page is saved as a screenshot."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import ConsoleMessage, Page

from appwarden.db.session import Database
from appwarden.demo.vendor_receiver import start
from appwarden.marketplace import versions
from appwarden.marketplace.standing import find
from console_screening import PDF, WHY, add_reviewers
from console_world import PASSWORD

from .conftest import screenshot

NewPage = Callable[[], Page]
SLUG = "browser-crm"


def sign_in(page: Page, server: str, username: str) -> list[str]:
    """Sign in; returns the list the page's CSP violations will be collected in."""
    found: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", seen)
    page.goto(f"{server}/console/login")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_load_state()
    return found


def save(page: Page, button: str) -> None:
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state()
    assert page.get_by_test_id("error").count() == 0, page.get_by_test_id("error").inner_text()


def vendor_submits(page: Page, server: str) -> None:
    page.get_by_role("link", name="アプリを登録").click()
    page.locator('input[name="slug"]').fill(SLUG)
    page.locator('input[name="name"]').fill("Browser CRM")
    page.locator('textarea[name="redirect_uris"]').fill(f"https://{SLUG}.example/cb")
    page.get_by_role("button", name="登録").click()
    page.wait_for_load_state()
    assert len(page.get_by_test_id("client-secret").inner_text()) > 30  # shown once
    screenshot(page, "vendor-registered")
    for n, scope in enumerate(["customers.name:raw", "customers.phone:raw"], start=1):
        page.get_by_label(f"スコープ {n}", exact=True).fill(scope)
        page.get_by_label(f"申請理由 {n}", exact=True).fill(WHY)
    save(page, "スコープを保存")
    page.locator('input[name="people_average"]').fill("100")
    page.locator('input[name="people_peak"]').fill("400")
    page.locator('input[name="requests_average"]').fill("10")
    page.locator('input[name="requests_peak"]').fill("60")
    save(page, "利用量を保存")
    for field in ("name", "phone"):
        page.locator(f'input[name="days_{field}"]').fill("90")
        page.locator(f'input[name="purpose_{field}"]').fill("printing invoices")
    save(page, "保存期間を保存")
    answers = page.locator('textarea[name^="answer_"]')
    assert answers.count() == 13  # tier 3: every section
    for i in range(answers.count()):
        answers.nth(i).fill("our documented and audited practice")
    page.locator('input[name="date_assessment.last"]').fill("2026-01-10")
    save(page, "回答を保存")
    for kind in ("security_policy", "pentest_report"):
        page.locator('select[name="kind"]').select_option(kind)
        page.locator('input[name="file"]').set_input_files(
            files=[{"name": f"{kind}.pdf", "mimeType": "application/pdf", "buffer": PDF + kind.encode()}]
        )
        save(page, "アップロード")
    assert page.get_by_test_id("evidence").count() == 2
    assert "ありません" in page.get_by_test_id("missing").inner_text()
    screenshot(page, "vendor-ready-to-submit")
    page.get_by_role("button", name="審査に提出").last.click()
    page.wait_for_load_state()
    assert page.get_by_test_id("version-status").inner_text() == "申請済み"
    screenshot(page, "vendor-submitted")


def vendor_registers_endpoint(page: Page, url: str, secrets: dict[str, str]) -> None:
    """The vendor saves its erasure endpoint; the signing secret is shown once, and the receiver keeps it."""
    page.locator('input[name="url"]').fill(url)
    page.get_by_role("button", name="受信先を保存").click()
    page.wait_for_load_state()
    secret = page.get_by_test_id("erasure-secret").inner_text()
    assert secret.startswith("whsec_")
    secrets[SLUG] = secret
    screenshot(page, "vendor-erasure-endpoint")


def reviewer_approves(page: Page, server: str, *, weaken: bool) -> None:
    page.goto(f"{server}/console/reviews")
    row = page.get_by_test_id("review-row").filter(has_text=SLUG)
    screenshot(page, "reviewer-queue" if weaken else "reviewer2-queue")
    row.get_by_role("link", name=SLUG).click()
    page.wait_for_load_state()
    assert WHY in page.content()
    assert page.get_by_test_id("evidence").count() == 2
    if weaken:
        page.get_by_label("customers.phone:raw の判定").select_option("weakened:masked")
        page.get_by_label("customers.phone:raw の理由").fill("the last four digits are enough on an invoice")
    screenshot(page, "reviewer-sheet" if weaken else "reviewer2-sheet")
    page.get_by_role("button", name="承認", exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_test_id("done").count() == 1


def test_vendor_submits_and_two_reviewers_approve_one_scope_weaker(
    server: str, new_page: NewPage, db: Database
) -> None:
    add_reviewers(db)
    vendor = new_page()
    vendor_csp = sign_in(vendor, server, "vendor-a-dev")
    vendor_submits(vendor, server)
    secrets: dict[str, str] = {}
    endpoints, stop = start(secrets)  # the vendor's erasure endpoint: a real receiver checking signatures
    try:
        vendor_registers_endpoint(vendor, f"{endpoints}/{SLUG}", secrets)

        first = new_page()
        first_csp = sign_in(first, server, "reviewer1")
        reviewer_approves(first, server, weaken=True)
        assert "判定済み" in first.content()  # the sheet says a second reviewer must sign off
        screenshot(first, "reviewer-decided")

        second = new_page()
        second_csp = sign_in(second, server, "reviewer2")
        # The sign-off lists the app, so the vendor's endpoint must pass the check first.
        second.goto(f"{server}/console/reviews/{SLUG}")
        assert second.get_by_test_id("endpoint-check").get_attribute("data-ready") == "no"
        second.get_by_role("button", name="確認を実行").click()
        second.wait_for_load_state()
        assert second.get_by_test_id("endpoint-check").get_attribute("data-ready") == "yes"
        screenshot(second, "reviewer2-endpoint-checked")
        reviewer_approves(second, server, weaken=False)
    finally:
        stop()
    assert second.get_by_test_id("version-status").inner_text() == "承認済み"
    approved = second.get_by_test_id("approved-scopes").inner_text()
    assert "customers.phone:masked" in approved and "customers.name:raw" in approved
    screenshot(second, "reviewer2-approved")
    with db.session() as session:
        version = versions.version_view(session, find(session, SLUG))
    assert version.status == "approved"
    assert set(version.approved_scopes or ()) == {"customers.name:raw", "customers.phone:masked"}

    vendor.reload()
    assert "customers.phone:masked" in vendor.get_by_test_id("approved-scopes").inner_text()
    assert vendor.get_by_test_id("audit").inner_text() != "—"  # tier 3: the next audit is scheduled
    screenshot(vendor, "vendor-approved")
    assert vendor_csp == first_csp == second_csp == []
