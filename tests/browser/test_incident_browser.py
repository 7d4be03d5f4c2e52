"""The security admin runs an incident from the browser (headless Chromium over the real server): the
kill switch behind its typed confirmation, the blast radius with the CLI's figures (``appwarden incident
blast-radius --json``), a fact, a leaked dump uploaded with its progress bar and verdict, the notices sent
to a real local SMTP server, a report downloaded. Screenshots of each step; the incident page is also
saved as ``docs/images/console-incident.png`` for the README."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from appwarden.app import create_app
from appwarden.cli import run
from appwarden.config import get_settings
from appwarden.db.session import Database
from appwarden.demo.traffic import LiveServer
from appwarden.incident.service import list_incidents
from attribution_helpers import deliver, write_csv
from console_world import PASSWORD, ConsoleWorld
from test_notices import Mailbox
from test_notices import mailbox as mailbox  # the notice tests' real SMTP server

from .conftest import screenshot
from .test_console_browser import csp_errors, sign_in

NewPage = Callable[[], Page]
README_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "console-incident.png"


@pytest.fixture
def incident_server(console_world: ConsoleWorld, mailbox: Mailbox, db: Database) -> Iterator[str]:
    """invoice-plus received company 0's names and phones and company 1's names; the server sends mail
    to the mailbox."""
    world = console_world.world
    t0, t1 = world.tenants
    deliver(world, "invoice-plus", t0, t0.customers, [("name", "raw"), ("phone", "raw")])
    deliver(world, "invoice-plus", t1, t1.customers[:7], [("name", "raw")])
    live = get_settings().model_copy(update={"monitor_background": False})
    assert live.smtp_target is not None
    with LiveServer(create_app(live, db)) as running:
        yield running.base_url


def figure(page: Page, testid: str) -> int:
    return int(page.get_by_test_id(testid).inner_text().replace(",", ""))


def test_the_security_admin_runs_the_incident_from_the_browser(
    incident_server: str,
    new_page: NewPage,
    console_world: ConsoleWorld,
    mailbox: Mailbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, db = incident_server, console_world.db
    t0, t1 = console_world.world.tenants
    page = new_page()
    violations = csp_errors(page)
    sign_in(page, server, "secadmin", PASSWORD)
    page.get_by_role("link", name="インシデント", exact=True).click()
    page.get_by_role("link", name="キルスイッチ:インシデントを開く").click()
    screenshot(page, "incident-new")

    # The typed confirmation: a near miss is refused and nothing happens.
    page.locator("select[name=app]").select_option("invoice-plus")
    page.get_by_label("理由").fill("顧客データがフォーラムに掲載された")
    page.get_by_label("確認のため、アプリのスラッグを入力してください").fill("invoice")
    page.get_by_role("button", name="アプリを停止してインシデントを開く").click()
    assert "一致しません" in page.get_by_test_id("kill-error").inner_text()
    screenshot(page, "incident-new-mismatch")
    with db.session() as session:
        assert list_incidents(session) == []
    page.get_by_label("確認のため、アプリのスラッグを入力してください").fill("invoice-plus")
    page.get_by_role("button", name="アプリを停止してインシデントを開く").click()
    page.get_by_test_id("killed").wait_for()
    ref = page.url.rsplit("/", 1)[1].split("?")[0]
    assert ref.startswith("inc_") and page.get_by_test_id("incident-status").inner_text() == "対応中"

    # The figures are the CLI's.
    assert run(["incident", "blast-radius", ref, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert figure(page, "persons-exposed") == cli["persons_exposed"] == 12 + 7
    for field, counts in cli["fields"].items():
        for mode in ("raw", "masked", "token", "exposed"):
            assert figure(page, f"{mode}-{field}") == counts[mode]
    for company in cli["companies"]:
        assert figure(page, f"company-{company['id']}") == company["persons_exposed"]
    assert page.get_by_role("img", name="契約企業ごとの漏えい人数").is_visible()

    # A fact now known.
    page.get_by_label("新たにわかったこと").fill("ベンダーのバックアップが公開状態だった")
    page.get_by_role("button", name="事実を追加").click()
    assert "ベンダーのバックアップが公開状態だった" in page.get_by_test_id("known").inner_text()

    # The leaked dump: company 0's names and phones as the app received them.
    dump = write_csv(tmp_path / "leak.csv", ["氏名", "TEL"], [[c.name, c.phone] for c in t0.customers])
    page.locator("#dump-form input[type=file]").set_input_files(str(dump))
    page.get_by_role("button", name="アップロードして判定").click()
    page.get_by_test_id("verdict").wait_for()
    assert page.get_by_test_id("verdict-apps").inner_text().strip() == "invoice-plus"
    assert "app" in page.get_by_test_id("verdict-source").inner_text()
    assert page.get_by_test_id("upload-progress").evaluate("p => p.value") == 100
    assert page.get_by_test_id("candidate").first.inner_text().startswith("invoice-plus")
    screenshot(page, "incident-verdict")
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.evaluate("window.scrollTo(0, 0)")
    top = screenshot(page, "incident-top", full_page=False)
    if os.environ.get("APPWARDEN_UPDATE_README_IMAGES"):  # refresh the README's picture on purpose only
        shutil.copy(top, README_IMAGE)
    page.reload()
    assert "attribution" in page.get_by_test_id("timeline").inner_text()
    screenshot(page, "incident")

    # The notices, previewed then sent; each company once.
    page.get_by_role("link", name="通知と報告書").click()
    assert page.get_by_test_id("notice").count() == 2
    screenshot(page, "incident-notices")
    page.get_by_role("button", name="未送信の通知を送る").click()
    page.get_by_test_id("sent").wait_for()
    assert sorted(r for rcpt, _ in mailbox.received for r in rcpt) == [
        "owner0@example.jp",
        "owner1@example.jp",
    ]
    assert page.get_by_test_id(f"delivery-{t0.company.public_id}").inner_text().startswith("sent")
    screenshot(page, "incident-notices-sent")
    with page.expect_download() as download:
        page.locator(f'[data-company="{t1.company.public_id}"]').get_by_test_id(
            "report-preliminary-ja-md"
        ).click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"report-preliminary-{t1.company.public_id}-ja.md"
    assert "7人" in saved.read_text()
    assert violations == []
