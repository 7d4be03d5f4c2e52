"""The kill switch over the real ASGI app and a real database: one transaction (all or nothing), then every
/v1 route refuses the app with 403 ``app_delisted``, refresh and new authorisations fail, and each refused
call is recorded as evidence."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from appwarden.broker.refusals import Refusal, RefusalLog
from appwarden.cli import run
from appwarden.db.session import Database
from appwarden.demo.oauth_client import OAuthFlowError, connect_app, refresh
from appwarden.events.models import SecurityEvent
from appwarden.incident.models import Incident, IncidentApp, TimelineEntry
from appwarden.marketplace.models import App
from appwarden.oauth.models import Connection, Token
from conftest import OWNER_PASSWORD, World

PROBLEM = "application/problem+json"


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def kill(client: TestClient, admin: dict[str, str], *apps: str, reason: str = "dump found") -> httpx.Response:
    return client.post("/admin/incidents", json={"apps": list(apps), "reason": reason}, headers=admin)


def calls(client: TestClient, token: dict[str, Any], customer: str) -> list[httpx.Response]:
    """One call to every /v1 route."""
    h = bearer(token)
    return [
        client.get("/v1/customers", headers=h),
        client.get("/v1/customers?fields=name&limit=1", headers=h),
        client.get(f"/v1/customers/{customer}", headers=h),
        client.get("/v1/transactions", headers=h),
        client.post("/v1/detokenize", json={"purpose": "p", "tokens": ["tok_x"]}, headers=h),
    ]


def state(db: Database, slug: str) -> dict[str, Any]:
    with db.session() as s:
        app = s.scalar(select(App).where(App.slug == slug))
        assert app is not None
        tokens = s.scalars(select(Token).where(Token.app_id == app.id))
        connections = s.scalars(select(Connection).where(Connection.app_id == app.id))
        return {
            "listing": app.listing_state,
            "revoked": sorted(t.revoked_at is not None for t in tokens),
            "connections": sorted(c.status for c in connections),
            "incidents": s.scalar(select(Incident.id).limit(1)),
            "events": len(s.scalars(select(SecurityEvent.id).where(SecurityEvent.app_id == app.id)).all()),
        }


def test_kill_switch_cuts_the_app_off_on_every_route(
    client: TestClient, world: World, admin_headers: dict[str, str], db: Database
) -> None:
    t0, t1 = world.tenants
    inv0, inv1 = world.connect("invoice-plus", t0), world.connect("invoice-plus", t1)
    loyal = world.connect("loyalty-stamp", t0)
    page = client.get("/v1/customers?limit=2", headers=bearer(inv0))
    assert page.status_code == 200
    customer = page.json()["data"][0]["id"]

    r = kill(client, admin_headers, "invoice-plus")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["apps"] == ["invoice-plus"]
    assert body["tokens_revoked"] == 2 and body["refresh_tokens_revoked"] == 2
    assert body["connections_suspended"] == 2
    assert body["companies"] == sorted([t0.company.public_id, t1.company.public_id])
    assert body["signal"] == {"via": "database"}

    for token in (inv0, inv1):
        for response in calls(client, token, customer):
            assert response.status_code == 403, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.json()["code"] == "app_delisted"
    # The other app is untouched.
    assert client.get("/v1/customers", headers=bearer(loyal)).status_code == 200

    # The database: delisted, every token revoked, every connection suspended, in one incident.
    after = state(db, "invoice-plus")
    assert after["listing"] == "delisted"
    assert after["revoked"] == [True, True]
    assert after["connections"] == ["suspended", "suspended"]
    with db.session() as s:
        incident = s.scalar(select(Incident).where(Incident.public_id == body["incident"]))
        assert incident is not None and incident.status == "open"
        assert (
            s.scalar(select(IncidentApp.killed_at).where(IncidentApp.incident_id == incident.id)) is not None
        )
        kinds = [
            e.kind for e in s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident.id))
        ]
        assert kinds == ["opened", "kill_switch"]
        entry = s.scalar(select(TimelineEntry).where(TimelineEntry.kind == "kill_switch"))
        assert entry is not None
        assert entry.data["tokens_revoked"] == 2 and entry.data["connections_suspended"] == 2
        tags = {e.tag for e in s.scalars(select(SecurityEvent))}
        assert {"app:listing:delisted", "connection:token:revoked", "connection:grant:suspended",
                "incident:record:opened", "broker:call:refused"} <= tags  # fmt: skip
        assert (
            len(incident.known) == 1 and "2 connections of 2 companies suspended" in incident.known[0]["text"]
        )
        assert len(incident.unknown) == 6


def test_refresh_and_new_authorisations_fail_after_the_kill(
    client: TestClient, world: World, admin_headers: dict[str, str]
) -> None:
    _, client_id, secret = world.apps["invoice-plus"]
    grant = connect_app(
        client,
        client_id=client_id,
        client_secret=secret,
        redirect_uri="https://invoice-plus.example/cb",
        username="owner0",
        password=OWNER_PASSWORD,
        scope="customers.name:raw customers.phone:raw",
    )
    assert client.get("/v1/customers", headers=bearer(grant)).status_code == 200
    assert kill(client, admin_headers, "invoice-plus").status_code == 201

    assert client.get("/v1/customers", headers=bearer(grant)).json()["code"] == "app_delisted"
    with pytest.raises(OAuthFlowError) as refused:
        refresh(client, client_id=client_id, client_secret=secret, refresh_token=str(grant["refresh_token"]))
    assert refused.value.error == "unauthorized_client"
    with pytest.raises(OAuthFlowError) as denied:
        connect_app(
            client,
            client_id=client_id,
            client_secret=secret,
            redirect_uri="https://invoice-plus.example/cb",
            username="owner1",
            password=OWNER_PASSWORD,
            scope="customers.name:raw",
        )
    assert denied.value.status == 403


def test_unknown_app_or_missing_reason_changes_nothing(
    client: TestClient, world: World, admin_headers: dict[str, str], db: Database
) -> None:
    token = world.connect("invoice-plus", world.tenants[0])
    before = state(db, "invoice-plus")
    r = kill(client, admin_headers, "invoice-plus", "no-such-app")
    assert r.status_code == 404 and r.json()["code"] == "app_not_found"
    r = kill(client, admin_headers, "invoice-plus", reason="   ")
    assert r.status_code == 422
    assert (
        client.post("/admin/incidents", json={"apps": [], "reason": "x"}, headers=admin_headers).status_code
        == 422
    )
    assert client.post("/admin/incidents", json={"apps": ["invoice-plus"], "reason": "x"}).status_code == 401
    assert state(db, "invoice-plus") == before
    assert client.get("/v1/customers", headers=bearer(token)).status_code == 200


def _fail_timeline_inserts(db: Database) -> None:
    """A real database failure AFTER the kill switch's token and connection updates (a trigger on the
    timeline insert), to prove the whole switch is one transaction."""
    with db.engine.begin() as conn:
        if db.is_sqlite:
            conn.execute(
                text(
                    "CREATE TRIGGER fail_kill BEFORE INSERT ON incident_timeline "
                    "WHEN NEW.kind = 'kill_switch' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION fail_kill() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER fail_kill BEFORE INSERT ON incident_timeline FOR EACH ROW "
                    "WHEN (NEW.kind = 'kill_switch') EXECUTE FUNCTION fail_kill()"
                )
            )


def _drop_trigger(db: Database) -> None:
    with db.engine.begin() as conn:
        if db.is_sqlite:
            conn.execute(text("DROP TRIGGER fail_kill"))
        else:
            conn.execute(text("DROP TRIGGER fail_kill ON incident_timeline"))
            conn.execute(text("DROP FUNCTION fail_kill()"))


def test_a_failure_half_way_rolls_everything_back(
    world: World, db: Database, capsys: pytest.CaptureFixture[str], client: TestClient
) -> None:
    token = world.connect("invoice-plus", world.tenants[0])
    before = state(db, "invoice-plus")
    _fail_timeline_inserts(db)
    try:
        assert run(["incident", "open", "--app", "invoice-plus", "--reason", "dump found"]) == 1
    finally:
        _drop_trigger(db)
    err = capsys.readouterr().err
    assert err.startswith("error: database error") and "Traceback" not in err
    assert state(db, "invoice-plus") == before
    assert client.get("/v1/customers", headers=bearer(token)).status_code == 200


def test_refused_calls_are_recorded_with_who_and_where(
    client: TestClient, world: World, admin_headers: dict[str, str], db: Database
) -> None:
    t0, t1 = world.tenants
    inv0, inv1 = world.connect("invoice-plus", t0), world.connect("invoice-plus", t1)
    incident = kill(client, admin_headers, "invoice-plus").json()["incident"]
    for _ in range(2):
        client.get("/v1/customers", headers=bearer(inv0))
    client.post("/v1/detokenize", json={"purpose": "p", "tokens": ["tok_x"]}, headers=bearer(inv1))
    with db.session() as s:
        rows = list(s.scalars(select(SecurityEvent).where(SecurityEvent.tag == "broker:call:refused")))
        tokens = {t.company_id: t.id for t in s.scalars(select(Token))}
    assert len(rows) == 3
    assert [(r.company_id, r.data["path"], r.data["method"], r.data["count"]) for r in rows] == [
        (t0.company.id, "/v1/customers", "GET", 1),
        (t0.company.id, "/v1/customers", "GET", 1),
        (t1.company.id, "/v1/detokenize", "POST", 1),
    ]
    assert rows[0].data["token_id"] == tokens[t0.company.id] and rows[0].data["remote"] == "testclient"
    assert all(r.data["code"] == "app_delisted" for r in rows)
    shown = client.get(f"/admin/incidents/{incident}", headers=admin_headers).json()["refused_calls"]
    assert shown["count"] == 3 and shown["rows"] == 3
    assert shown["by_company"] == {t0.company.public_id: 2, t1.company.public_id: 1}
    assert shown["recent"][0]["path"] == "/v1/detokenize"


def test_refused_call_rows_are_capped_per_app_per_second_and_counts_carried(
    world: World, db: Database
) -> None:
    """A killed app hammering the API writes at most ``per_second`` rows per second; the rest are counted
    into the next row, so ``sum(count)`` is every call."""
    now = [100.0]
    refusals = RefusalLog(db, per_second=2, clock=lambda: now[0])
    app_id = world.apps["invoice-plus"][0]
    who = Refusal(app_id=app_id, company_id=world.tenants[0].company.id, token_id=1)
    written = [refusals.note(who, code="app_delisted", method="GET", path="/v1/customers", remote="x")
               for _ in range(7)]  # fmt: skip
    assert written == [True, True, False, False, False, False, False]
    now[0] += 1.0
    assert refusals.note(who, code="app_delisted", method="GET", path="/v1/customers", remote="x")
    with db.session() as s:
        counts = [
            e.data["count"]
            for e in s.scalars(select(SecurityEvent).where(SecurityEvent.tag == "broker:call:refused"))
        ]
    assert counts == [1, 1, 6]  # fmt: skip
    assert sum(counts) == 8


def test_killing_two_apps_in_one_incident(
    client: TestClient, world: World, admin_headers: dict[str, str]
) -> None:
    a = world.connect("invoice-plus", world.tenants[0])
    b = world.connect("booking-go", world.tenants[1])
    body = kill(client, admin_headers, "invoice-plus", "booking-go").json()
    assert body["apps"] == ["invoice-plus", "booking-go"] and body["connections_suspended"] == 2
    assert client.get("/v1/customers", headers=bearer(a)).json()["code"] == "app_delisted"
    assert client.get("/v1/customers", headers=bearer(b)).json()["code"] == "app_delisted"


def test_a_second_kill_of_an_app_cut_off_by_an_open_incident_says_so(
    client: TestClient, world: World, admin_headers: dict[str, str], db: Database, capsys: Any
) -> None:
    world.connect("invoice-plus", world.tenants[0])
    first = kill(client, admin_headers, "invoice-plus")
    assert first.status_code == 201, first.text
    incident = first.json()["incident"]
    before = state(db, "invoice-plus")
    again = kill(client, admin_headers, "invoice-plus", reason="dump found again")
    assert again.status_code == 409
    assert again.json()["code"] == "incident_already_open"
    assert again.json()["incident"] == incident
    assert run(["incident", "open", "--app", "invoice-plus", "--reason", "again"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invoice-plus already has an open incident, " + incident)
    with db.session() as s:
        assert len(s.scalars(select(Incident.id)).all()) == 1  # no second incident was opened
    assert state(db, "invoice-plus") == before
