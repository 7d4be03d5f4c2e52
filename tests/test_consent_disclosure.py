"""The consent page tells the owner what screening recorded: the vendor, the tier and why, each field's
purpose and retention as the vendor declared them, and that raw identifying fields come only by
restricted token (issue 11, point 8)."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from appwarden.app import create_app
from appwarden.config import Settings, get_settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.marketplace import service as marketplace
from appwarden.marketplace import versions
from conftest import World
from test_oauth import authorize_query, login

PHONE_WHY = "Printed on the invoice so the store can call the customer back"
NAME_WHY = "The addressee on every invoice the store issues"


def declare(world: World) -> None:
    """invoice-plus's vendor declares version 2 and review puts it in force."""
    with world.db.session() as session:
        app = marketplace.get_app(session, "invoice-plus")
        version = versions.new_version(session, app, actor="vendor")
        versions.request_scopes(
            version,
            [
                {"scope": "customers.name:raw", "justification": NAME_WHY},
                {"scope": "customers.phone:raw", "justification": PHONE_WHY},
                {"scope": "transactions:read", "justification": "Invoice lines come from the sales"},
            ],
        )
        versions.declare_retention(
            version,
            {
                "name": {"days": 30, "purpose": "until the invoice is paid"},
                "phone": {"days": 7, "purpose": "call-back window"},
            },
        )
        marketplace.put_version_in_force(
            session, app, version, list(app.approved_scopes), actor="reviewer", now=utcnow()
        )


def consent_page(client: TestClient, world: World) -> str:
    login(client)
    page = client.get("/oauth/authorize", params=authorize_query(world))
    assert page.status_code == 200, page.text
    return html.unescape(page.text)


def row_of(page: str, scope: str) -> str:
    """The consent table's row for ``scope``."""
    row = r"<tr>(?:(?!</tr>).)*value=\"" + re.escape(scope) + r"\"(?:(?!</tr>).)*</tr>"
    found = re.search(row, page, re.S)
    assert found is not None, scope
    return found.group(0)


def test_a_screened_app_shows_its_tier_purposes_retention_and_restricted_tokens(
    client: TestClient, world: World
) -> None:
    declare(world)
    page = consent_page(client, world)
    assert re.search(r'id="tier">Tier 3（審査済み', page)
    assert "customers.name:raw" in page.split('id="tier"')[1].split("</tr>")[0]  # the reason is shown
    assert 'id="restricted-notice"' in page and "制限付きトークン" in page
    name = row_of(page, "customers.name:raw")
    assert NAME_WHY in name and "30 日" in name and "until the invoice is paid" in name
    assert "restricted token only" in name
    phone = row_of(page, "customers.phone:raw")
    assert PHONE_WHY in phone and "7 日" in phone and "call-back window" in phone
    sales = row_of(page, "transactions:read")
    assert "Invoice lines come from the sales" in sales and "restricted token only" not in sales


def test_a_grandfathered_app_is_shown_unreviewed_with_raw_on_ordinary_access(
    client: TestClient, world: World
) -> None:
    with world.db.session() as session:
        app = marketplace.get_app(session, "invoice-plus")
        app.grandfathered = True  # listed before screening existed
    page = consent_page(client, world)
    assert "未審査" in page and "unreviewed" in page
    assert 'id="restricted-notice"' not in page and "restricted token only" not in page
    assert "none declared" in row_of(page, "customers.name:raw")


def test_masked_examples_are_each_fields_own_and_the_brokers_masking() -> None:
    from appwarden.broker.service import MASKERS
    from appwarden.marketplace.scopes import MASKED_EXAMPLES

    assert set(MASKED_EXAMPLES) == set(MASKERS)
    for field, (sample, masked) in MASKED_EXAMPLES.items():
        assert MASKERS[field](sample) == masked, field


def test_the_consent_page_shows_a_masked_fields_own_example(client: TestClient, world: World) -> None:
    login(client)
    query = authorize_query(world, "booking-go", scope="customers.email:masked customers.phone:masked")
    page = client.get("/oauth/authorize", params=query)
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "例: y***@example.com" in row_of(text, "customers.email:masked")
    assert "例: 090-****-5678" in row_of(text, "customers.phone:masked")
    assert "090-****" not in row_of(text, "customers.email:masked")


def obligations_of(page: str) -> str:
    found = re.search(r'<section id="vendor-obligations">(.*?)</section>', page, re.S)
    assert found is not None, "no obligations section"
    return found.group(1)


def item(section: str, name: str) -> str:
    found = re.search(rf'<li id="obligation-{name}">(.*?)</li>\s*(?=<li id=|</ul>\s*$)', section, re.S)
    assert found is not None, name
    return found.group(1)


def test_the_consent_page_states_the_vendors_obligations(client: TestClient, world: World) -> None:
    """Retention per field as accepted in review (the default for a field declared nothing for), erasure
    webhooks with their delay, the attestation deadline and the canaries, in Japanese first."""
    declare(world)
    settings = get_settings()
    page = consent_page(client, world)
    section = obligations_of(page)
    assert "提供元（ベンダー）の義務" in section
    kept = item(section, "retention")
    per_field = re.findall(r"<li data-field-retention=\"(\d+)\">([^:<]+):", kept)
    assert per_field == [("30", "氏名"), ("7", "電話番号")]
    assert "申告なし" not in kept  # both fields were declared
    erasure = item(section, "erasure")
    assert f"連携を解除すると {settings.erasure_company_redact_delay_hours:g} 時間後に" in erasure
    assert "<code>company.redact</code>" in erasure and "<code>customer.redact</code>" in erasure
    assert "HMAC-SHA256" in erasure
    attestation = item(section, "attestation")
    assert f"{settings.attestation_deadline_days} 日以内" in attestation
    assert settings.attestation_deadline_days == 30  # APPWARDEN_ATTESTATION_DEADLINE_DAYS' default
    canaries = item(section, "canaries")
    assert f"{settings.canaries_per_connection} 件のカナリア" in canaries


def test_the_obligations_follow_the_settings_and_the_retention_default(
    settings: Settings, db: Database, world: World
) -> None:
    """An undeclared field gets APPWARDEN_RETENTION_DEFAULT_DAYS; the delay and the deadline are the
    settings' (APPWARDEN_ERASURE_COMPANY_REDACT_DELAY_HOURS, APPWARDEN_ATTESTATION_DEADLINE_DAYS)."""
    changed = settings.model_copy(
        update={
            "attestation_deadline_days": 21,
            "erasure_company_redact_delay_hours": 72.0,
            "retention_default_days": 45,
            "canary_enabled": False,
        }
    )
    with TestClient(create_app(changed, db), base_url="http://testserver") as client:
        section = obligations_of(consent_page(client, world))  # no retention declared at all
    kept = item(section, "retention")
    assert re.findall(r"<li data-field-retention=\"(\d+)\">", kept) == ["45", "45"]
    assert kept.count("申告なし・既定の期間") == 2
    assert "連携を解除すると 72 時間後に" in item(section, "erasure")
    assert "21 日以内" in item(section, "attestation")
    # Canaries off: the page says nothing of them (that would tell a vendor there is nothing to fear).
    assert 'id="obligation-canaries"' not in section and "カナリア" not in section
