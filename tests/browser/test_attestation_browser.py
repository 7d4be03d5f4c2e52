"""A vendor attests an erasure request in a real browser (headless Chromium) over the real server: the
request owed to its app is listed with its deadline, the attestation form (CSRF-protected) records it
once, the form is gone after; another vendor sees none of it."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page
from sqlalchemy import select

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.obligations.models import ErasureAttestation
from console_world import PASSWORD, ConsoleWorld
from erasure_helpers import owed_request

from .conftest import screenshot
from .test_console_browser import sign_in

NewPage = Callable[[], Page]


def test_a_vendor_attests_an_erasure_request_once(
    server: str, new_page: NewPage, settings: Settings, db: Database, console_world: ConsoleWorld
) -> None:
    request_id = owed_request(settings, db, console_world)
    page = new_page()
    sign_in(page, server, "vendor-a-dev", PASSWORD)
    page.get_by_role("link", name="消去依頼").click()
    row = page.locator(f'[data-testid="erasure-request"][data-request="{request_id}"]')
    assert row.get_by_test_id("attestation-state").inner_text().strip() == "証明待ち"
    form = page.get_by_test_id("attest-form")
    form.get_by_label("消去日時（UTC）").fill(utcnow().strftime("%Y-%m-%dT%H:%M"))
    form.get_by_label("消去した担当者（氏名）").fill("鈴木 花子")
    form.get_by_label("役職").fill("個人情報保護管理者")
    form.get_by_label("申述（任意）").fill("本番DBとバックアップから削除しました。")
    screenshot(page, "vendor-attestation-form")
    form.get_by_role("button", name="消去を証明する").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("done").inner_text() == "消去証明を記録しました。"
    state = row.get_by_test_id("attestation-state").inner_text()
    assert "証明済み" in state and "鈴木 花子" in state
    assert page.get_by_test_id("attest-form").count() == 0  # final: no second form
    screenshot(page, "vendor-attestation-done")
    with db.session() as session:
        (made,) = session.scalars(select(ErasureAttestation)).all()
        assert made.attested_by == "鈴木 花子" and made.attested_role == "個人情報保護管理者"

    other = new_page()
    sign_in(other, server, "vendor-b-dev", PASSWORD)
    other.goto(f"{server}/console/vendor/erasure-requests")
    assert other.locator('[data-testid="erasure-request"]').count() == 0
