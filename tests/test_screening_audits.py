"""Re-audits against an injected clock and a real local SMTP server: reminders 30 and 7 days before (each
once), lapse restricts the app (raw PII drops to tokens) and tells each connected company; a passed
audit relists. Grandfathered apps: unreviewed, due at once, scheduled by the operator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from appwarden.cli import run
from appwarden.config import Settings, get_settings
from appwarden.db.migrate import upgrade
from appwarden.db.session import Database
from appwarden.marketplace import service as marketplace
from appwarden.screening import audits
from conftest import World
from screening_helpers import approve, new_vendor, prepare, staff
from test_notices import Mailbox, mailbox  # noqa: F401  (the real SMTP server fixture)

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


def listed_tier3(client: TestClient, db: Database, admin_headers: dict[str, str]) -> None:
    vendor = new_vendor(client, db)
    prepare(vendor, "invoice-pro", ["customers.name:raw", "customers.phone:masked"])
    for who in ("alice", "bob"):
        assert approve(client, "invoice-pro", staff(db, who), admin_headers).status_code == 200


def test_reminders_then_lapse_restrict_and_tell_the_companies(
    client: TestClient,
    db: Database,
    world: World,
    admin_headers: dict[str, str],
    mailbox: Mailbox,  # noqa: F811
) -> None:
    listed_tier3(client, db, admin_headers)
    with db.session() as session:
        app = marketplace.get_app(session, "invoice-pro")
        due = audits.schedule(session, app, T0 + timedelta(days=60), actor="test", now=T0).due_at
        app_id = app.id
    assert due is not None
    world.apps["invoice-pro"] = (app_id, "", "")
    headers = {"Authorization": f"Bearer {world.connect('invoice-pro', world.tenants[0])['access_token']}"}
    world.connect("invoice-pro", world.tenants[1])
    settings = get_settings()

    assert audits.run(db, settings, now=due - timedelta(days=40)).to_dict()["reminded"] == []
    first = audits.run(db, settings, now=due - timedelta(days=29))
    assert first.reminded == [{"app": "invoice-pro", "days": 30}]
    assert audits.run(db, settings, now=due - timedelta(days=20)).reminded == []  # sent once
    assert audits.run(db, settings, now=due - timedelta(days=6)).reminded == [
        {"app": "invoice-pro", "days": 7}
    ]
    assert audits.run(db, settings, now=due - timedelta(days=1)).reminded == []
    vendor_mail = mailbox.to("security@invoice.example")
    assert [m["Subject"] for m in vendor_mail] == [
        "[appwarden] Audit of invoice-pro due in 30 days",
        "[appwarden] Audit of invoice-pro due in 7 days",
    ]

    lapsed = audits.run(db, settings, now=due + timedelta(minutes=1))
    assert lapsed.restricted == ["invoice-pro"]
    assert sorted(lapsed.companies_told[0]["companies"]) == ["owner0@example.jp", "owner1@example.jp"]
    assert "is now restricted" in mailbox.to("owner1@example.jp")[0].get_content()
    assert audits.run(db, settings, now=due + timedelta(days=1)).companies_told == []  # told once
    # Restricted, token policy: the raw name now arrives as a token; the call still works.
    page = client.get("/v1/customers?fields=name", headers=headers)
    assert page.status_code == 200
    names = [c["name"] for c in page.json()["data"] if c.get("name")]
    assert names and not any("山田" in n for n in names)

    with db.session() as session:
        app = marketplace.get_app(session, "invoice-pro")
        nxt = audits.pass_audit(
            session, app, actor="alice", notes="re-audit passed", now=due + timedelta(days=3)
        )
        assert app.listing_state == "listed" and nxt is not None
        assert nxt.due_at == due + timedelta(days=3) + (nxt.due_at - (due + timedelta(days=3)))
        assert (nxt.due_at - (due + timedelta(days=3))).days in range(181, 185)  # tier 3: 6 months
    assert any(
        "山田" in c["name"] for c in client.get("/v1/customers?fields=name", headers=headers).json()["data"]
    )


def test_lapse_without_smtp_still_restricts_and_retries_the_mail(
    client: TestClient, db: Database, admin_headers: dict[str, str], settings: Settings
) -> None:
    listed_tier3(client, db, admin_headers)
    with db.session() as session:
        audits.schedule(session, marketplace.get_app(session, "invoice-pro"), T0, actor="test", now=T0)
    report = audits.run(db, settings, now=T0 + timedelta(seconds=1))
    assert report.restricted == ["invoice-pro"] and report.failed and report.companies_told == []
    with db.session() as session:
        assert marketplace.get_app(session, "invoice-pro").listing_state == "restricted"


def test_grandfathered_apps_are_unreviewed_and_due_at_once(
    db: Database, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    # The operator's direct listing (``apps register``) is how apps came before screening existed.
    assert (
        run(
            [
                "apps",
                "register",
                "--slug",
                "legacy-books",
                "--name",
                "Legacy Books",
                "--redirect-uri",
                "https://legacy-books.example/cb",
                "--scopes",
                "customers.name:raw customers.phone:raw",
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert run(["apps", "show", "legacy-books", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["grandfathered"], shown["reviewed"], shown["tier"]) == (True, False, 3)
    assert run(["audits", "schedule", "legacy-books", "--json"]) == 0  # no date: due at once
    capsys.readouterr()
    assert run(["audits", "due", "--json"]) == 0
    due = {r["app"]: r for r in json.loads(capsys.readouterr().out)}
    assert due["legacy-books"]["due_at"] is None and due["legacy-books"]["overdue"] is True
    assert run(["audits", "schedule", "legacy-books", "--due", "2026-03-01T00:00:00+09:00", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["due_at"] == "2026-02-28T15:00:00+00:00"
    # An undated audit never lapses by itself: the grandfathered app keeps working.
    assert run(["audits", "run", "--now", "2026-02-01T00:00:00+00:00", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["restricted"] == []
    assert run(["audits", "schedule", "legacy-books", "--due", "not-a-date"]) == 1


def test_migration_grandfathers_existing_apps(tmp_path: Path, migrated_template: Any) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006")
    now = "2025-06-01 00:00:00.000000"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO companies (id, public_id, name, created_at) VALUES (1, 'co_a', 'A', ?)", (now,)
        )
        for app_id, slug, scopes, state in [
            (1, "invoice-plus", '["customers.name:raw", "transactions:read"]', "listed"),
            (2, "stamp", '["customers.points:raw"]', "suspended"),
            (3, "gone", '["customers.email:masked"]', "delisted"),
        ]:
            conn.exec_driver_sql(
                "INSERT INTO apps (id, slug, name, client_id, client_secret_hash, redirect_uris,"
                " approved_scopes, listing_state, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'h', '[]', ?, ?, ?, ?)",
                (app_id, slug, slug, f"app_{slug}", scopes, state, now, now),
            )
        conn.exec_driver_sql(
            "INSERT INTO connections (id, public_id, company_id, app_id, scopes, status, created_at,"
            " updated_at) VALUES (1, 'con_1', 1, 1, ?, 'active', ?, ?)",
            ('["customers.name:raw"]', now, now),
        )
    upgrade(url)
    with engine.connect() as conn:
        apps = conn.exec_driver_sql(
            "SELECT slug, listing_state, restricted_policy, grandfathered, approved_version"
            " FROM apps ORDER BY id"
        ).all()
        assert [tuple(a) for a in apps] == [
            ("invoice-plus", "listed", "token", 1, 1),
            ("stamp", "restricted", "pause", 1, 1),
            ("gone", "delisted", "token", 1, 1),
        ]
        versions = conn.exec_driver_sql(
            "SELECT app_id, number, status, approved_scopes FROM app_versions"
        ).all()
        assert next((v[0], v[1], v[2], json.loads(v[3])) for v in versions) == (
            1,
            1,
            "approved",
            ["customers.name:raw", "transactions:read"],
        )
        due = conn.exec_driver_sql("SELECT app_id, tier, status, due_at FROM audits ORDER BY app_id").all()
        assert [tuple(d) for d in due] == [(1, 3, "open", None), (2, 1, "open", None)]
        assert conn.exec_driver_sql("SELECT app_version FROM connections").scalar() == 1
    engine.dispose()


def test_a_reminder_is_claimed_once_by_concurrent_runs(
    client: TestClient, db: Database, world: World, admin_headers: dict[str, str]
) -> None:
    if db.engine.dialect.name == "sqlite":
        pytest.skip("PostgreSQL only: SQLite serialises writers and refuses a writer whose read is stale")
    from appwarden.screening.audits import _claim
    from appwarden.screening.models import Audit

    listed_tier3(client, db, admin_headers)
    with db.session() as session:
        app = marketplace.get_app(session, "invoice-pro")
        audit_id = audits.schedule(session, app, T0 + timedelta(days=20), actor="test", now=T0).id
    # Two workers read the audit as unreminded; the first claims and commits; the second, whose read
    # is now stale, must not claim (and so must not send) again.
    first, second = db.sessionmaker(), db.sessionmaker()
    try:
        assert first.get(Audit, audit_id).reminded_30_at is None  # type: ignore[union-attr]
        assert second.get(Audit, audit_id).reminded_30_at is None  # type: ignore[union-attr]
        assert _claim(first, audit_id, "reminded_30_at", T0)
        first.commit()
        assert not _claim(second, audit_id, "reminded_30_at", T0)
    finally:
        first.close()
        second.close()
