"""``appwarden ledger verify|who-has`` and the ``/admin/ledger`` API, over a real database."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from appwarden.cli import run
from appwarden.events.models import SecurityEvent
from appwarden.ledger.service import record_delivery
from conftest import World


def _fill(world: World, n: int = 4) -> None:
    t = world.tenants[0]
    for i in range(n):
        record_delivery(
            world.db,
            request_id=f"req-{i}",
            app_id=world.apps["invoice-plus"][0],
            company_id=t.company.id,
            connection_id=None,
            endpoint="/v1/customers",
            kind="delivery",
            deliveries={
                ("name", "raw"): [t.customers[i].id, t.customers[0].id],
                ("phone", "raw"): [t.customers[i].id],
            },
        )


def _tags(world: World) -> list[str]:
    with world.db.session() as session:
        return list(session.scalars(select(SecurityEvent.tag).order_by(SecurityEvent.id)))


def test_verify_cli_intact_then_tampered(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(world)
    assert run(["ledger", "verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["intact"] is True and report["entries"] == 4 and report["head"]["seq"] == 4
    assert _tags(world)[-1] == "ledger:chain:verified"

    with world.db.session() as session:
        session.execute(text("UPDATE ledger_entries SET request_id = 'rewritten' WHERE seq = 2"))
    assert run(["ledger", "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["intact"] is False
    assert [(p["kind"], p["position"]) for p in report["problems"]] == [("altered", 2)]
    assert _tags(world)[-1] == "ledger:chain:tamper-detected"

    assert run(["ledger", "verify"]) == 1
    human = capsys.readouterr().out
    assert human.splitlines()[0].startswith("ledger TAMPERED: 1 altered")
    assert "altered" in human and "seq 2" in human


def test_who_has_cli(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(world)
    customer = world.tenants[0].customers[0].public_id
    assert run(["ledger", "who-has", customer, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["app"], r["field"], r["mode"], r["entries"]) for r in rows] == [
        ("invoice-plus", "name", "raw", 4),
        ("invoice-plus", "phone", "raw", 1),
    ]
    assert rows[0]["first_at"] <= rows[0]["last_at"]
    assert run(["ledger", "who-has", customer]) == 0
    assert "invoice-plus" in capsys.readouterr().out

    assert run(["ledger", "who-has", "cus_doesnotexist"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert run(["ledger", "who-has", "12"]) == 1
    assert "cus_" in capsys.readouterr().err


def test_admin_api(world: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    _fill(world, 5)
    assert client.get("/admin/ledger/verify").status_code == 401
    body = client.get("/admin/ledger/verify", headers=admin_headers).json()
    assert body["intact"] is True and body["entries"] == 5

    customer = world.tenants[0].customers[1].public_id
    body = client.get(f"/admin/ledger/who-has/{customer}", headers=admin_headers).json()
    assert [(r["app"], r["field"], r["entries"]) for r in body["data"]] == [
        ("invoice-plus", "name", 1),
        ("invoice-plus", "phone", 1),
    ]
    missing = client.get("/admin/ledger/who-has/cus_nope", headers=admin_headers)
    assert missing.status_code == 404 and missing.json()["code"] == "customer_not_found"
    assert missing.headers["content-type"].startswith("application/problem+json")

    page = client.get("/admin/ledger/entries?app=invoice-plus&limit=2", headers=admin_headers).json()
    assert [e["seq"] for e in page["data"]] == [1, 2] and page["next_after"] == 2
    assert page["data"][1]["fields"] == {"name:raw": 2, "phone:raw": 1}
    assert "payload" not in page["data"][0]
    rest = client.get("/admin/ledger/entries?limit=10&after=2", headers=admin_headers).json()
    assert [e["seq"] for e in rest["data"]] == [3, 4, 5] and rest["next_after"] is None
    company = world.tenants[1].company.public_id
    assert client.get(f"/admin/ledger/entries?company={company}", headers=admin_headers).json()["data"] == []
    bad = client.get("/admin/ledger/entries?app=nope", headers=admin_headers)
    assert bad.status_code == 404 and bad.json()["code"] == "app_not_found"
    assert client.get("/admin/ledger/entries?limit=0", headers=admin_headers).status_code == 422
