"""Unused permissions from the ledger's index, with an injected clock: a scope delivered (that field in
that mode, in any company) within 90 days is used; one not delivered and approved at least 90 days ago
is unused; one approved more recently is not yet judged; resource scopes are not judged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from appwarden.cli import run
from appwarden.db.base import utcnow
from appwarden.ledger.usage import Usage, approved_since, scope_usage, unused_scopes
from appwarden.marketplace import service as marketplace
from appwarden.screening import review
from conftest import World
from test_blast_radius import deliver

LATER = timedelta(days=200)  # "now" this far after the apps' approval (at registration, real time)


def statuses(world: World, slug: str, now: datetime, days: int = 90) -> dict[str, str]:
    with world.db.session() as session:
        return {
            u.scope: u.status.value for u in scope_usage(session, world.apps[slug][0], now=now, days=days)
        }


def test_used_unused_and_never_used_since_an_old_approval(world: World) -> None:
    now = utcnow() + LATER
    t0, t1 = world.tenants
    deliver(world, "invoice-plus", t0, {("name", "raw"): [0, 1]}, at=now - timedelta(days=10))
    deliver(world, "invoice-plus", t0, {("phone", "raw"): [0]}, at=now - timedelta(days=100))
    assert statuses(world, "invoice-plus", now) == {
        "customers.name:raw": "used",
        "customers.phone:raw": "unused",  # last delivered 100 days ago
        "transactions:read": "not_judged",
    }
    with world.db.session() as session:
        assert unused_scopes(session, world.apps["invoice-plus"][0], now=now) == ["customers.phone:raw"]
        # Never delivered at all since an approval 200 days ago: every field scope is unused.
        assert unused_scopes(session, world.apps["loyalty-stamp"][0], now=now) == [
            "customers.name:masked",
            "customers.phone:token",
            "customers.points:raw",
            "customers.rank:raw",
        ]
    # The window is the caller's: 120 days covers the phone delivery.
    assert statuses(world, "invoice-plus", now, days=120)["customers.phone:raw"] == "used"
    # Any company counts: a delivery in company 1 makes the scope used across the app.
    deliver(world, "invoice-plus", t1, {("phone", "raw"): [2]}, at=now - timedelta(days=1))
    assert statuses(world, "invoice-plus", now)["customers.phone:raw"] == "used"


def test_the_mode_must_match(world: World) -> None:
    # The access token delivers a raw-approved name masked: that does not use customers.name:raw.
    now = utcnow() + LATER
    deliver(world, "invoice-plus", world.tenants[0], {("name", "masked"): [0]}, at=now - timedelta(days=1))
    assert statuses(world, "invoice-plus", now)["customers.name:raw"] == "unused"


def test_a_recent_approval_is_not_yet_judged(world: World) -> None:
    now = utcnow() + timedelta(days=30)
    assert statuses(world, "booking-go", now) == {
        "customers.name:token": "not_yet_judged",
        "customers.email:masked": "not_yet_judged",
        "customers.phone:masked": "not_yet_judged",
    }
    deliver(world, "booking-go", world.tenants[0], {("email", "masked"): [0]}, at=now - timedelta(days=2))
    assert statuses(world, "booking-go", now)["customers.email:masked"] == "used"
    with world.db.session() as session:
        assert unused_scopes(session, world.apps["booking-go"][0], now=now) == []


def test_approval_runs() -> None:
    day = [datetime(2025, 1, d, tzinfo=UTC) for d in range(1, 5)]
    approvals = [
        (day[1], ["customers.name:raw", "customers.phone:raw"]),
        (day[2], ["customers.name:raw"]),  # phone dropped ...
        (day[3], ["customers.name:raw", "customers.phone:raw"]),  # ... and approved again: a new run
    ]
    current = ["customers.name:raw", "customers.phone:raw", "customers.rank:raw"]
    assert approved_since(approvals, current, registered=day[0]) == {
        "customers.name:raw": day[1],
        "customers.phone:raw": day[3],
        "customers.rank:raw": day[0],  # named by no approval: since registration
    }


def test_cli_and_admin_api(
    world: World, client: TestClient, admin_headers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Real time: the apps were approved moments ago, so nothing is judged unused yet.
    assert run(["ledger", "unused", "invoice-plus", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["app"] == "invoice-plus" and report["days"] == 90 and report["unused"] == []
    assert [(s["scope"], s["status"]) for s in report["scopes"]] == [
        ("customers.name:raw", Usage.NOT_YET_JUDGED),
        ("customers.phone:raw", Usage.NOT_YET_JUDGED),
        ("transactions:read", Usage.NOT_JUDGED),
    ]
    assert run(["ledger", "unused", "invoice-plus", "--days", "1"]) == 0
    assert "unused in 1 days: none" in capsys.readouterr().out
    assert run(["ledger", "unused", "no-such-app"]) == 1
    assert "no-such-app" in capsys.readouterr().err
    assert run(["ledger", "unused", "invoice-plus", "--days", "0"]) == 1

    response = client.get("/admin/ledger/unused/invoice-plus?days=30", headers=admin_headers)
    assert response.status_code == 200 and response.json()["days"] == 30
    assert response.json()["scopes"] == report["scopes"]
    assert client.get("/admin/ledger/unused/nope", headers=admin_headers).json()["code"] == "app_not_found"
    assert client.get("/admin/ledger/unused/invoice-plus?days=0", headers=admin_headers).status_code == 422
    assert client.get("/admin/ledger/unused/invoice-plus").status_code == 401


def test_the_review_sheet_lists_unused_scopes_as_candidates_to_drop(world: World) -> None:
    """The next version's review shows what the app holds but has not used in 90 days."""
    with world.db.session() as session:
        app = marketplace.get_app(session, "loyalty-stamp")
        version = review.review_version(session, app, None)
        later = review.sheet(session, app, version, now=utcnow() + timedelta(days=120))
        today = review.sheet(session, app, version, now=utcnow())
    assert later["unused_scopes"] == sorted(app.approved_scopes)  # nothing delivered in 120 days
    assert today["unused_scopes"] == []  # approved today: not yet judged
