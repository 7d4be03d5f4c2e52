"""The risk score per app (``monitor.risk``) and the app views that show it (issue 12 point 5): every app
list is ordered by it with its parts shown, through the marketplace's ``app facts`` question; the same
views show the app's unused scopes (issue 11 point 7)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.ledger.exposure import PeopleHeld
from appwarden.marketplace import facts
from appwarden.marketplace import service as marketplace
from appwarden.marketplace.models import App
from appwarden.monitor import risk
from appwarden.monitor.policy import Detector, Severity
from appwarden.monitor.service import Finding, acknowledge, raise_alert
from appwarden.screening import audits
from conftest import World
from test_blast_radius import deliver

PARTS = ["sensitivity", "people", "audit", "alerts", "obligations"]


def listed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert run(["apps", "list", "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def order(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [row["slug"] for row in listed(capsys)]


def alert(world: World, slug: str, severity: Severity, n: int = 0) -> str:
    now = utcnow()
    finding = Finding(
        detector=Detector.CANARY_CONTACT if severity == Severity.CRITICAL else Detector.PROBING,
        severity=severity,
        app_id=world.apps[slug][0],
        company_id=world.tenants[0].company.id,
        observed={"n": n},
        baseline={},
        window_start=now - timedelta(hours=1, minutes=n),
        window_end=now,
        ledger_entries=[],
    )
    with world.db.session() as session:
        _, raised = raise_alert(session, finding, cap=20, now=now)
        assert raised is not None
        return raised.public_id


def scores(world: World, now: datetime) -> dict[str, risk.RiskScore]:
    with world.db.session() as session:
        apps = marketplace.list_apps(session)
        found = risk.risk_scores(session, apps, now)
        return {app.slug: found[app.id] for app in apps}


def test_the_list_follows_raw_people_held_and_open_alerts(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the table's slugs whole
    rows = listed(capsys)
    # Nothing held, nothing open: the most sensitive scopes first (raw names > masked), then slug.
    assert [r["slug"] for r in rows] == ["invoice-plus", "booking-go", "loyalty-stamp"]
    for row in rows:
        assert list(row["risk"]["parts"]) == PARTS and all(
            "factor" in p for p in row["risk"]["parts"].values()
        )
        assert row["risk"]["parts"]["obligations"] == {
            "factor": 1.0,
            "overdue": 0,
            "attestations_overdue": 0,
        }  # nothing held yet
    assert rows[0]["risk"]["parts"]["sensitivity"]["most_sensitive"] == "customers.name:raw"

    # loyalty-stamp holds 24 people (masked names, points): it passes booking-go, which holds nobody.
    for tenant in world.tenants:
        deliver(world, "loyalty-stamp", tenant, {("name", "masked"): range(12), ("points", "raw"): range(12)})
    rows = listed(capsys)
    assert [r["slug"] for r in rows] == ["invoice-plus", "loyalty-stamp", "booking-go"]
    people = rows[1]["risk"]["parts"]["people"]
    assert (people["raw"], people["not_raw"]) == (0, 24)  # points are raw but not identifying

    # A canary contact on booking-go (critical, open) lifts it over the raw-PII app holding nobody ...
    canary = alert(world, "booking-go", Severity.CRITICAL)
    rows = listed(capsys)
    assert [r["slug"] for r in rows] == ["booking-go", "invoice-plus", "loyalty-stamp"]
    assert rows[0]["risk"]["parts"]["alerts"] == {"factor": 3.0, "open": {"critical": 1}}

    # ... until invoice-plus holds people's raw names: five raw people weigh more than 24 masked.
    deliver(world, "invoice-plus", world.tenants[0], {("name", "raw"): range(5)})
    rows = listed(capsys)
    assert [r["slug"] for r in rows] == ["invoice-plus", "booking-go", "loyalty-stamp"]
    assert rows[0]["risk"]["parts"]["people"] == {"factor": pytest.approx(1.7782), "raw": 5, "not_raw": 0}
    assert rows[0]["risk"]["score"] > rows[1]["risk"]["score"] > rows[2]["risk"]["score"]

    # An acknowledged alert no longer counts.
    with world.db.session() as session:
        acknowledge(session, canary, actor="sec")
    assert order(capsys) == ["invoice-plus", "loyalty-stamp", "booking-go"]

    # The table shows the score column, in the same order.
    assert run(["apps", "list"]) == 0
    table = capsys.readouterr().out
    assert "risk" in table and table.index("invoice-plus") < table.index("loyalty-stamp") < table.index(
        "booking-go"
    )


def test_alerts_add_up_by_severity_and_are_capped() -> None:
    assert risk.alerts_part({})["factor"] == 1.0
    assert risk.alerts_part({"high": 2, "low": 1})["factor"] == pytest.approx(2.1)
    assert risk.alerts_part({"medium": 1})["open"] == {"medium": 1}
    assert risk.alerts_part({"critical": 20})["factor"] == 1 + risk.ALERTS_CAP  # a noisy detector is capped


def test_raw_people_count_more_than_people_held_otherwise() -> None:
    raw = risk.people_part(PeopleHeld(held=1000, raw=1000))
    masked = risk.people_part(PeopleHeld(held=1000, raw=0))
    nobody = risk.people_part(PeopleHeld(held=0, raw=0))
    assert raw["factor"] == pytest.approx(4.0004) and masked["factor"] == pytest.approx(3.0043)
    assert nobody["factor"] == 1.0  # holding nobody does not zero the score: scopes and audit still rank it
    assert risk.sensitivity(["stores:read"])["factor"] == 0.0
    assert risk.sensitivity(["customers.rank:raw", "customers.email:token"])["most_sensitive"] == (
        "customers.email:token"
    )


def test_an_overdue_audit_raises_the_score(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    now = utcnow()
    deliver(world, "booking-go", world.tenants[0], {("email", "masked"): range(6)})
    with world.db.session() as session:
        app = marketplace.get_app(session, "booking-go")
        audits.schedule(session, app, now + timedelta(days=30), actor="test", now=now)
    before = scores(world, now)["booking-go"]
    after = scores(world, now + timedelta(days=31))["booking-go"]
    assert before.parts["audit"]["overdue"] is False and before.parts["audit"]["factor"] == 1.0
    assert after.parts["audit"]["overdue"] is True and after.parts["audit"]["days_overdue"] == 1
    # 31 days on, the six e-mails are also past the default 30-day retention: one company overdue.
    assert after.parts["obligations"] == {"factor": 1.5, "overdue": 1, "attestations_overdue": 0}
    assert after.score == pytest.approx(before.score * risk.OVERDUE_AUDIT * 1.5, abs=0.01)
    assert after.parts["audit"]["audit_tier"] == 2

    # A grandfathered app (listed before screening) is unreviewed and its first audit due at once.
    assert run(
        [
            "apps", "register", "--slug", "legacy-books", "--name", "Legacy Books", "--redirect-uri",
            "https://legacy-books.example/cb", "--scopes", "customers.name:raw", "--json",
        ]
    ) == 0  # fmt: skip
    (legacy,) = [r for r in listed(capsys) if r["slug"] == "legacy-books"]
    audit = legacy["risk"]["parts"]["audit"]
    assert (audit["grandfathered"], audit["reviewed"], audit["overdue"]) == (True, False, True)
    assert audit["factor"] == risk.OVERDUE_AUDIT * risk.UNREVIEWED
    # Same scopes, nobody held by either: the grandfathered one outranks the screened invoice-plus.
    assert order(capsys)[:2] == ["legacy-books", "invoice-plus"]


def backdate_approvals(world: World, days: int, *slugs: str) -> None:
    """As if the apps had been registered and approved ``days`` ago (so unused scopes can be judged)."""
    ids = [world.apps[slug][0] for slug in slugs]
    with world.db.session() as session:
        then = utcnow() - timedelta(days=days)
        session.execute(update(App).where(App.id.in_(ids)).values(created_at=then))
        session.execute(update(SecurityEvent).where(SecurityEvent.app_id.in_(ids)).values(occurred_at=then))


def test_unused_scopes_are_shown_on_the_app(
    world: World, client: TestClient, admin_headers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    backdate_approvals(world, 200, "invoice-plus", "loyalty-stamp")
    deliver(
        world, "invoice-plus", world.tenants[0], {("name", "raw"): [0, 1]}, at=utcnow() - timedelta(days=3)
    )
    capsys.readouterr()
    assert run(["apps", "show", "invoice-plus", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["unused_scopes"] == ["customers.phone:raw"]  # name used 3 days ago; phone never
    assert run(["apps", "show", "loyalty-stamp", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unused_scopes"] == [
        "customers.name:masked",
        "customers.phone:token",
        "customers.points:raw",
        "customers.rank:raw",
    ]
    api = client.get("/admin/apps/invoice-plus", headers=admin_headers)
    assert api.status_code == 200
    assert api.json()["unused_scopes"] == ["customers.phone:raw"]
    assert api.json()["risk"] == shown["risk"] and list(api.json()["risk"]["parts"]) == PARTS
    # Approved moments ago: not yet judged, so nothing to drop.
    assert client.get("/admin/apps/booking-go", headers=admin_headers).json()["unused_scopes"] == []
    # The text view shows both.
    assert run(["apps", "show", "invoice-plus"]) == 0
    text = capsys.readouterr().out
    assert "unused_scopes: customers.phone:raw" in text and "sensitivity: 1 (" in text and " × " in text


def test_admin_api_lists_apps_riskiest_first_with_the_old_keys_kept(
    world: World, client: TestClient, admin_headers: dict[str, str], settings: Settings, db: Database
) -> None:
    deliver(world, "loyalty-stamp", world.tenants[0], {("name", "masked"): range(12)})
    alert(world, "loyalty-stamp", Severity.HIGH)
    alert(world, "loyalty-stamp", Severity.HIGH, n=1)
    response = client.get("/admin/apps", headers=admin_headers)
    assert response.status_code == 200
    rows = response.json()
    assert [r["slug"] for r in rows] == ["loyalty-stamp", "invoice-plus", "booking-go"]
    assert [r["risk"]["score"] for r in rows] == sorted((r["risk"]["score"] for r in rows), reverse=True)
    assert rows[0]["risk"]["parts"]["alerts"]["open"] == {"high": 2}
    with db.session() as session:
        summary = marketplace.app_summary(marketplace.get_app(session, "loyalty-stamp"), session=session)
    assert list(rows[0])[: len(summary)] == list(summary)  # additive: the existing keys, in their order
    assert {k: rows[0][k] for k in summary} == summary
    assert list(rows[0])[len(summary) :] == ["risk", "unused_scopes", "holdings"]
    assert client.get("/admin/apps").status_code == 401


def test_alerts_list_shows_the_apps_risk(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    alert(world, "booking-go", Severity.HIGH)
    with world.db.session() as session:
        expected = risk.risk_scores(session, [marketplace.get_app(session, "booking-go")], utcnow())
    capsys.readouterr()
    assert run(["alerts", "list"]) == 0
    table = capsys.readouterr().out
    assert "risk" in table and f"{next(iter(expected.values())).score:g}" in table


def test_the_views_fail_closed_when_unwired_or_an_answer_leaves_an_app_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world.db.session() as session:
        apps = marketplace.list_apps(session)
        now = datetime.now(UTC)
        monkeypatch.setattr(facts.app_facts, "_answers", [])
        with pytest.raises(RuntimeError, match=r"'app facts'.*wiring"):
            facts.app_views(session, apps, now)

        def partial(session: Any, asked: Any, now: datetime) -> dict[int, dict[str, Any]]:
            return {apps[0].id: {"x": 1}}

        monkeypatch.setattr(facts.app_facts, "_answers", [partial])
        with pytest.raises(RuntimeError, match="gave no facts about app"):
            facts.app_views(session, apps, now)

        def unscored(session: Any, asked: Any, now: datetime) -> dict[int, dict[str, Any]]:
            return {a.id: {"x": 1} for a in asked}

        monkeypatch.setattr(facts.app_facts, "_answers", [unscored])
        with pytest.raises(RuntimeError, match="gives the 'risk'"):
            facts.app_views(session, apps, now)
        monkeypatch.setattr(facts.app_facts, "_answers", [unscored, unscored])
        with pytest.raises(RuntimeError, match="a second time"):
            facts.app_views(session, apps, now)
