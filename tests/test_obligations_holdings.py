"""What each vendor may still hold (``appwarden holdings``), checked against an independent recount of
the ledger: for every person and field, the latest raw or masked delivery, against the retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from appwarden.cli import run
from appwarden.ledger.chain import decode_payload
from appwarden.ledger.models import LedgerEntry
from appwarden.marketplace.models import AppVersion
from appwarden.marketplace.standing import find
from appwarden.monitor.risk import risk_scores
from appwarden.oauth.models import Connection
from appwarden.oauth.vocabulary import ConnectionStatus
from appwarden.obligations.service import holdings
from conftest import World
from ledger_helpers import deliver

NOW = datetime.now(UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _recount(
    world: World, slug: str, retention: dict[str, int], ended: set[int]
) -> dict[tuple[int, str], tuple[int, int]]:
    """(company id, field) -> (may_hold, should_not_hold), from the entries alone."""
    app_id = world.apps[slug][0]
    latest: dict[tuple[int, str, int], datetime] = {}
    with world.db.session() as session:
        for entry in session.scalars(select(LedgerEntry).where(LedgerEntry.app_id == app_id)):
            for (field, mode), people in decode_payload(entry.payload).items():
                if mode not in ("raw", "masked"):
                    continue
                for person in people:
                    key = (entry.company_id, field, person)
                    latest[key] = max(latest.get(key, entry.recorded_at), entry.recorded_at)
    counts: dict[tuple[int, str], list[int]] = {}
    for (company, field, _person), at in latest.items():
        c = counts.setdefault((company, field), [0, 0])
        kept = company not in ended and at > ago(retention.get(field, 30))
        c[0 if kept else 1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def _rows(world: World, slug: str) -> dict[tuple[int, str], tuple[int, int]]:
    ids = {t.company.public_id: t.company.id for t in world.tenants}
    with world.db.session() as session:
        found = holdings(session, app_ref=slug, now=NOW)
    return {(ids[r.company], r.field): (r.may_hold, r.should_not_hold) for r in found}


def test_holdings_equal_an_independent_recount_of_the_ledger(world: World) -> None:
    world.connect("invoice-plus", world.tenants[0])
    world.connect("invoice-plus", world.tenants[1])
    deliver(world, "invoice-plus", 0, ago(40), name__raw=[0, 1, 2, 3], phone__raw=[0, 1])
    deliver(world, "invoice-plus", 0, ago(3), name__raw=[1])  # delivered again: still within retention
    deliver(world, "invoice-plus", 0, ago(10), phone__masked=[2])
    deliver(world, "invoice-plus", 1, ago(31), name__raw=[0, 1])
    deliver(world, "invoice-plus", 1, ago(29), name__raw=[1, 2], phone__token=[0, 1, 2])  # tokens: not held
    got = _rows(world, "invoice-plus")
    assert got == _recount(world, "invoice-plus", {}, set())
    first, second = world.tenants[0].company.id, world.tenants[1].company.id
    assert got[(first, "name")] == (1, 3)
    assert got[(first, "phone")] == (1, 2)
    assert got[(second, "name")] == (2, 1)
    assert (second, "phone") not in got  # only tokens went out


def test_the_accepted_retention_and_an_ended_connection_change_the_split(world: World) -> None:
    world.connect("invoice-plus", world.tenants[0])
    world.connect("invoice-plus", world.tenants[1])
    deliver(world, "invoice-plus", 0, ago(40), name__raw=[0, 1], phone__raw=[0])
    deliver(world, "invoice-plus", 1, ago(1), name__raw=[0, 1, 2])
    app_id = world.apps["invoice-plus"][0]
    with world.db.session() as session:
        session.execute(
            update(AppVersion)
            .where(AppVersion.app_id == app_id)
            .values(retention={"name": {"days": 90, "purpose": "invoices"}})
        )
        session.execute(
            update(Connection)
            .where(Connection.app_id == app_id, Connection.company_id == world.tenants[1].company.id)
            .values(status=ConnectionStatus.REVOKED.value)
        )
    got = _rows(world, "invoice-plus")
    assert got == _recount(world, "invoice-plus", {"name": 90}, {world.tenants[1].company.id})
    assert got[(world.tenants[0].company.id, "name")] == (2, 0)  # 40 days < the 90 it accepted
    assert got[(world.tenants[0].company.id, "phone")] == (0, 1)  # the default 30 days
    assert got[(world.tenants[1].company.id, "name")] == (0, 3)  # disconnected: nothing may be kept


def test_past_retention_counts_in_the_risk_score(world: World) -> None:
    world.connect("invoice-plus", world.tenants[0])
    deliver(world, "invoice-plus", 0, ago(1), name__raw=[0])
    with world.db.session() as session:
        before = risk_scores(session, [find(session, "invoice-plus")], NOW)
    deliver(world, "invoice-plus", 0, ago(45), name__raw=[1])
    with world.db.session() as session:
        after = risk_scores(session, [find(session, "invoice-plus")], NOW)
    app_id = world.apps["invoice-plus"][0]
    assert before[app_id].parts["obligations"]["factor"] == 1.0
    assert after[app_id].parts["obligations"]["factor"] == 1.5  # one company past retention


def test_cli_and_admin_api_give_the_contract_rows(
    world: World, client: TestClient, admin_headers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    world.connect("invoice-plus", world.tenants[0])
    deliver(world, "invoice-plus", 0, ago(40), name__raw=[0, 1])
    company = world.tenants[0].company.public_id
    assert run(["holdings", "--app", "invoice-plus", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [
        {
            "app": "invoice-plus",
            "company": company,
            "field": "name",
            "may_hold": 0,
            "should_not_hold": 2,
            "retention_days": 30,
        }
    ]
    response = client.get("/admin/holdings", params={"company": company}, headers=admin_headers)
    assert response.status_code == 200
    assert [r for r in response.json() if r["app"] == "invoice-plus"] == rows
    shown = client.get("/admin/apps/invoice-plus", headers=admin_headers).json()
    assert shown["holdings"] == {"may_hold": 0, "should_not_hold": 2, "companies_past_retention": 1}


def test_unknown_references_are_one_line_errors_and_404s(
    world: World, client: TestClient, admin_headers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["holdings", "--app", "no-such-app"]) == 1
    assert capsys.readouterr().err.strip() == "error: no app 'no-such-app'"
    response = client.get("/admin/holdings", params={"company": "co_nope"}, headers=admin_headers)
    assert response.status_code == 404
    assert response.json()["code"] == "company_not_found"
    assert client.get("/admin/holdings").status_code == 401
