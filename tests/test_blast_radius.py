"""Blast radius over a real database: known deliveries in, exact distinct counts out (index and as-of)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.cli import run
from appwarden.incident.blast_radius import _compute, compute_blast_radius, parse_time
from appwarden.incident.models import Incident
from appwarden.incident.service import open_incident, timeline
from appwarden.ledger.service import record_delivery
from appwarden.marketplace.models import App
from appwarden.platform import service as platform
from conftest import Tenant, World
from test_broker import bearer, problem

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def deliver(
    world: World,
    slug: str,
    tenant: Tenant,
    deliveries: dict[tuple[str, str], Iterable[int]],
    *,
    at: datetime | None = None,
) -> None:
    """Record one delivery of ``tenant``'s customers (by position) to ``slug``."""
    record_delivery(
        world.db,
        request_id=f"req-{slug}-{at}",
        app_id=world.apps[slug][0],
        company_id=tenant.company.id,
        connection_id=None,
        endpoint="/v1/customers",
        kind="delivery",
        deliveries={key: [tenant.customers[i].id for i in idx] for key, idx in deliveries.items()},
        now=at,
    )


def incident_for(world: World, *slugs: str) -> str:
    with world.db.session() as session:
        apps = [session.get(App, world.apps[slug][0]) for slug in slugs]
        incident = open_incident(session, apps=[a for a in apps if a], reason="leak found", actor="test")
        return incident.public_id


def stores_of(tenant: Tenant, positions: Iterable[int]) -> dict[str, int]:
    """Expected per-store counts: the world puts customer i in store i % stores."""
    counts: dict[str, int] = {}
    for i in positions:
        store = tenant.stores[i % len(tenant.stores)].public_id
        counts[store] = counts.get(store, 0) + 1
    return counts


def test_union_across_apps_modes_companies_and_stores(world: World) -> None:
    t0, t1 = world.tenants
    deliver(world, "invoice-plus", t0, {("name", "raw"): range(0, 6), ("phone", "raw"): range(0, 3)})
    deliver(world, "loyalty-stamp", t0, {("name", "masked"): range(4, 10), ("phone", "token"): range(12)})
    # Company 1 only ever got tokens from the incident's apps: nobody exposed, so no notice, not listed.
    deliver(world, "loyalty-stamp", t1, {("phone", "token"): range(5)})
    # booking-go is not part of the incident: its deliveries never count.
    deliver(world, "booking-go", t1, {("email", "masked"): range(12), ("phone", "masked"): range(12)})
    ref = incident_for(world, "invoice-plus", "loyalty-stamp")

    radius = compute_blast_radius(world.db, ref).to_dict()

    assert radius["incident"] == ref
    assert radius["apps"] == ["invoice-plus", "loyalty-stamp"]
    assert radius["fields"] == {
        "name": {"raw": 6, "masked": 6, "token": 0, "exposed": 10},  # 0..5 ∪ 4..9
        "phone": {"raw": 3, "masked": 0, "token": 12 + 5, "exposed": 3},
    }
    assert radius["persons_exposed"] == 10
    assert radius["canaries_excluded"] == 0
    [company] = radius["companies"]
    assert company["id"] == t0.company.public_id and company["name"] == t0.company.name
    assert company["persons_exposed"] == 10
    assert company["fields"]["name"] == {"exposed": 10, "raw": 6, "masked": 6, "token": 0}
    assert company["fields"]["phone"] == {"exposed": 3, "raw": 3, "masked": 0, "token": 12}
    assert {s["id"]: s["persons_exposed"] for s in company["stores"]} == stores_of(t0, range(10))
    assert sum(s["persons_exposed"] for s in company["stores"]) == company["persons_exposed"]
    assert {s["name"] for s in company["stores"]} == {s.name for s in t0.stores}
    assert list(radius) == [
        "incident",
        "apps",
        "as_of",
        "fields",
        "persons_exposed",
        "canaries_excluded",
        "companies",
    ]


def test_real_traffic_masked_counts_token_does_not_missing_phone_not_counted(
    world: World, client: TestClient
) -> None:
    t0, t1 = world.tenants
    # invoice-plus: name and phone approved raw, so masked through its access token; customers 4 and 9
    # have no phone (the world leaves i % 5 == 4 empty).
    response = client.get(
        "/v1/customers", params={"limit": 500}, headers=bearer(world.connect("invoice-plus", t0))
    )
    assert response.status_code == 200, response.text
    assert sum(1 for row in response.json()["data"] if row["phone"] is None) == 2
    # booking-go on company 1: name as token, phone and email masked.
    response = client.get(
        "/v1/customers", params={"limit": 500}, headers=bearer(world.connect("booking-go", t1))
    )
    assert response.status_code == 200, response.text
    ref = incident_for(world, "invoice-plus", "booking-go")

    radius = compute_blast_radius(world.db, ref).to_dict()

    with_phone = [i for i in range(12) if i % 5 != 4]
    with_email = [i for i in range(12) if i % 4 != 3]
    assert radius["fields"]["name"] == {"raw": 0, "masked": 12, "token": 12, "exposed": 12}
    assert radius["fields"]["phone"] == {
        "raw": 0,
        "masked": 2 * len(with_phone),
        "token": 0,
        "exposed": 2 * len(with_phone),
    }
    assert radius["fields"]["email"] == {"raw": 0, "masked": len(with_email), "token": 0, "exposed": 9}
    # Company 1's name tokens expose nobody's name, but the masked phones and emails expose people.
    by_id = {c["id"]: c for c in radius["companies"]}
    assert by_id[t0.company.public_id]["persons_exposed"] == 12
    assert by_id[t1.company.public_id]["persons_exposed"] == len(set(with_phone) | set(with_email))
    assert by_id[t1.company.public_id]["fields"]["name"] == {"exposed": 0, "raw": 0, "masked": 0, "token": 12}
    assert radius["persons_exposed"] == sum(c["persons_exposed"] for c in radius["companies"])
    for company in radius["companies"]:
        assert sum(s["persons_exposed"] for s in company["stores"]) == company["persons_exposed"]


def test_as_of_replays_entries_and_agrees_with_the_index(world: World) -> None:
    t0, t1 = world.tenants
    deliver(world, "invoice-plus", t0, {("name", "raw"): range(0, 4)}, at=T0)
    deliver(
        world,
        "invoice-plus",
        t0,
        {("name", "raw"): range(2, 8), ("phone", "raw"): [0, 1]},
        at=T0 + timedelta(hours=1),
    )
    deliver(world, "invoice-plus", t1, {("name", "raw"): range(3)}, at=T0 + timedelta(hours=2))
    ref = incident_for(world, "invoice-plus")

    def counts(as_of: datetime | None) -> dict[str, Any]:
        return compute_blast_radius(world.db, ref, as_of=as_of).to_dict()

    before = counts(T0 - timedelta(seconds=1))
    assert before["fields"] == {} and before["persons_exposed"] == 0 and before["companies"] == []
    first = counts(T0)  # at or before: the first delivery is included at its own time
    assert first["fields"] == {"name": {"raw": 4, "masked": 0, "token": 0, "exposed": 4}}
    assert first["as_of"] == "2026-01-05T09:00:00Z"
    second = counts(T0 + timedelta(minutes=90))
    assert second["fields"]["name"]["exposed"] == 8 and second["fields"]["phone"]["exposed"] == 2
    assert [c["id"] for c in second["companies"]] == [t0.company.public_id]
    after = counts(T0 + timedelta(days=1))
    now = counts(None)
    assert (
        after["fields"]
        == now["fields"]
        == {
            "name": {"raw": 11, "masked": 0, "token": 0, "exposed": 11},
            "phone": {"raw": 2, "masked": 0, "token": 0, "exposed": 2},
        }
    )
    assert after["companies"] == now["companies"]
    # The replay path and the index path give the same answer at every point after the last delivery.
    with world.db.sessionmaker() as session:
        replayed = _compute(session, ref, T0 + timedelta(days=1), force_scan=True).to_dict()
    assert replayed == after


def test_canaries_are_excluded_from_every_count(world: World) -> None:
    t0, _ = world.tenants
    deliver(world, "invoice-plus", t0, {("name", "raw"): range(12), ("phone", "raw"): [0, 1, 2]})
    deliver(world, "loyalty-stamp", t0, {("phone", "token"): [3]})
    canaries = [t0.customers[i].id for i in (0, 3, 5)]  # 0: name+phone, 3: name+token, 5: name
    with world.db.session() as session:
        for customer_id in canaries:
            platform.update_customer(session, customer_id, {"is_canary": True})
    ref = incident_for(world, "invoice-plus", "loyalty-stamp")

    radius = compute_blast_radius(world.db, ref).to_dict()

    assert radius["canaries_excluded"] == 3
    assert radius["fields"] == {
        "name": {"raw": 9, "masked": 0, "token": 0, "exposed": 9},
        "phone": {"raw": 2, "masked": 0, "token": 0, "exposed": 2},
    }
    assert radius["persons_exposed"] == 9
    [company] = radius["companies"]
    assert {s["id"]: s["persons_exposed"] for s in company["stores"]} == stores_of(
        t0, [i for i in range(12) if i not in (0, 3, 5)]
    )
    with world.db.sessionmaker() as session:
        assert _compute(session, ref, None, force_scan=True).to_dict()["fields"] == radius["fields"]


def test_cli_json_human_timeline_and_errors(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    t0, _ = world.tenants
    deliver(world, "invoice-plus", t0, {("name", "raw"): range(12), ("phone", "raw"): range(5)})
    ref = incident_for(world, "invoice-plus")

    assert run(["incident", "blast-radius", ref, "--json"]) == 0
    captured = capsys.readouterr()
    body = json.loads(captured.out)  # stdout holds only the JSON
    assert body["persons_exposed"] == 12 and body["fields"]["phone"]["exposed"] == 5

    assert run(["incident", "blast-radius", ref, "--as-of", "2000-01-01"]) == 0
    human = " ".join(capsys.readouterr().out.split())  # the console wraps at its width
    assert "0 people exposed in 0 companies" in human and "as of 2000-01-01T00:00:00Z" in human

    assert run(["incident", "blast-radius", ref]) == 0
    human = " ".join(capsys.readouterr().out.split())
    assert "12 people exposed in 1 companies" in human
    assert t0.company.public_id in human and t0.stores[0].public_id in human

    with world.db.sessionmaker() as session:
        incident = session.scalar(select(Incident).where(Incident.public_id == ref))
        assert incident is not None
        entries = [e for e in timeline(session, incident) if e.kind == "counts"]
    assert [e.data["persons_exposed"] for e in entries] == [12, 0, 12]
    assert entries[0].actor == "cli" and entries[0].data["fields"]["phone"]["exposed"] == 5
    assert "12 people exposed" in entries[0].text

    assert run(["incident", "blast-radius", "inc_nope"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "inc_nope" in err and "Traceback" not in err
    assert run(["incident", "blast-radius", ref, "--as-of", "last tuesday"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "last tuesday" in err


def test_admin_api(world: World, client: TestClient, admin_headers: dict[str, str]) -> None:
    t0, _ = world.tenants
    deliver(world, "invoice-plus", t0, {("name", "raw"): range(7)}, at=T0)
    deliver(world, "invoice-plus", t0, {("name", "raw"): range(12)}, at=T0 + timedelta(hours=1))
    ref = incident_for(world, "invoice-plus")
    url = f"/admin/incidents/{ref}/blast-radius"

    response = client.get(url, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["name"]["exposed"] == 12
    response = client.get(url, params={"as_of": "2026-01-05T09:30:00+00:00"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["name"]["exposed"] == 7
    assert response.json()["as_of"] == "2026-01-05T09:30:00Z"
    # A time with an offset means that instant: 18:30 in Tokyo is 09:30 UTC.
    response = client.get(url, params={"as_of": "2026-01-05T18:30:00+09:00"}, headers=admin_headers)
    assert response.json()["fields"]["name"]["exposed"] == 7

    problem(
        client.get("/admin/incidents/inc_nope/blast-radius", headers=admin_headers), 404, "incident_not_found"
    )
    problem(client.get(url, params={"as_of": "soon"}, headers=admin_headers), 422, "invalid_parameter")
    assert client.get(url).status_code == 401


def test_parse_time() -> None:
    assert parse_time("2026-01-08T11:50:00Z") == datetime(2026, 1, 8, 11, 50, tzinfo=UTC)
    assert parse_time("2026-01-08") == datetime(2026, 1, 8, tzinfo=UTC)
    assert parse_time("2026-01-08T20:50:00+09:00") == datetime(2026, 1, 8, 11, 50, tzinfo=UTC)
